// Raw-pointer entry points of the fused verifier scoring op, shared by the CPU file, the CUDA file and the
// torch binding. Keeping torch out of these signatures is what lets `nvcc -c fused_score_cuda.cu` compile
// anywhere. The contract (shapes, semantics, tolerances) is documented in safework.verifiers.fused.
//
// One item n has V verifiers with up to L labels each. All arrays are dense, row-major, in one memory space
// (host for the CPU entry point, device for the CUDA launcher):
//   logits         (N, V, L) float   labels l >= label_counts[v] are padding and never read
//   label_counts   (V,)      int64   1 <= count <= L (validated by the caller; the kernels clamp for safety)
//   score_maps     (V, L)    float   score of each label
//   weights        (N, V)    float   recipe weight of verifier v for item n
//   format_rewards (N,)      float
//   format_weights (N,)      float
//   available      (N, V)    uint8   0: verifier v not loaded for item n -> its component counts as 1.0
// Outputs:
//   probabilities  (N, V, L) float   optional (nullptr: not written); padding and unavailable entries are 0
//   scores         (N, V)    float   sum_l p * score_map, or 1.0 where unavailable
//   rewards        (N,)      float   format * format_weight + sum_v weight * score
//   advantages     (N,)      float   (r - mean_g) / (std_g + eps); 0 in groups of one or with std 0
#pragma once

#include <stdint.h>

namespace safework {

struct FusedScoreArgs {
  const float* logits;
  const int64_t* label_counts;
  const float* score_maps;
  const float* weights;
  const float* format_rewards;
  const float* format_weights;
  const uint8_t* available;
  int64_t n;
  int64_t v;
  int64_t l;
  float* probabilities;  // may be nullptr
  float* scores;
  float* rewards;
  float* advantages;
  double eps;
  int unbiased;  // 1: sample std (divide by n - 1, as GRPO / torch.std); 0: population std
};

// Groups: group_size > 0 means contiguous groups of that many items (n % group_size == 0); otherwise
// group_ids (n,) gives an arbitrary int64 id per item, in any order. per_item = true scores item by item
// with fused::item_reward, the code the CUDA kernels run (tests prove it equals the vectorised default).
void fused_score_cpu(const FusedScoreArgs& args, const int64_t* group_ids, int64_t group_size, int threads,
                     bool per_item);

}  // namespace safework

// CUDA launcher (defined in fused_score_cuda.cu, linked only when the build has CUDA). `args` is a host
// struct holding device pointers. Groups: group_size > 0 as above; otherwise `sorted_ids` (n,) are the ids
// sorted ascending and `order` (n,) the item index of each sorted position, from a *stable* sort (so members
// of a group are visited in index order, exactly like the CPU path). Returns a cudaError_t as int (0 =
// success) and enqueues on `stream` (a cudaStream_t passed as void*).
extern "C" int safework_fused_score_cuda(const safework::FusedScoreArgs* args, const int64_t* sorted_ids,
                                         const int64_t* order, int64_t group_size, void* stream);
extern "C" const char* safework_fused_cuda_error_string(int code);
