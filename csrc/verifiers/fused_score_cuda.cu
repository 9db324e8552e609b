// CUDA kernels of the fused verifier scoring op. Only CUDA headers and <stdint.h>, raw pointers, extern "C"
// launchers: `nvcc -std=c++17 -c fused_score_cuda.cu` compiles it with no torch around; bindings.cpp calls
// the launcher. The arithmetic is fused_math.h, shared with the CPU path, so both give the same bits.
//
// Launch plans:
//   * contiguous groups of k <= kFusedMaxGroup items: ONE kernel. A block owns whole groups; each thread
//     scores one item (softmax -> mapped scores -> reward), the rewards meet in shared memory, and one thread
//     per group computes the z-scores. Nothing but the outputs touches global memory.
//   * larger contiguous groups: an item kernel, then a kernel with one thread per group.
//   * arbitrary ids: the binding sorts them (stable, so members keep index order); an item kernel, then a
//     kernel where the first sorted position of each group walks that group.
#include <cuda_runtime.h>
#include <stdint.h>

#include "fused_math.h"
#include "fused_score.h"

namespace {

constexpr int kThreads = 256;
constexpr int64_t kFusedMaxGroup = kThreads;
constexpr int64_t kMaxBlocks = 65535LL * 32;  // grid-stride loops cover the rest

using safework::FusedScoreArgs;

__global__ void items_kernel(FusedScoreArgs a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n; i += stride) {
    a.rewards[i] = safework::fused::item_reward(a, i);
  }
}

// Block b owns groups [b * per_block, (b + 1) * per_block); blockDim.x == per_block * k.
__global__ void fused_contiguous_kernel(FusedScoreArgs a, int64_t k, int64_t per_block) {
  extern __shared__ float block_rewards[];
  const int64_t groups = a.n / k;
  const int64_t first_group = static_cast<int64_t>(blockIdx.x) * per_block;
  const int64_t first_item = first_group * k;
  const int64_t local_groups = groups - first_group < per_block ? groups - first_group : per_block;
  const int64_t local_items = local_groups * k;
  for (int64_t t = threadIdx.x; t < local_items; t += blockDim.x) {
    const float r = safework::fused::item_reward(a, first_item + t);
    a.rewards[first_item + t] = r;
    block_rewards[t] = r;
  }
  __syncthreads();
  const int64_t g = threadIdx.x;
  if (g < local_groups) {
    safework::fused::group_advantages(block_rewards, nullptr, g * k, k, a.eps, a.unbiased,
                                      a.advantages + first_item);
  }
}

__global__ void contiguous_groups_kernel(FusedScoreArgs a, int64_t k) {
  const int64_t groups = a.n / k;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    safework::fused::group_advantages(a.rewards, nullptr, g * k, k, a.eps, a.unbiased, a.advantages);
  }
}

__global__ void sorted_groups_kernel(FusedScoreArgs a, const int64_t* __restrict__ sorted_ids,
                                     const int64_t* __restrict__ order) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n; i += stride) {
    const int64_t id = sorted_ids[i];
    if (i > 0 && sorted_ids[i - 1] == id) continue;  // not the first member of its group
    int64_t end = i + 1;
    while (end < a.n && sorted_ids[end] == id) ++end;
    safework::fused::group_advantages(a.rewards, order, i, end - i, a.eps, a.unbiased, a.advantages);
  }
}

unsigned int blocks_for(int64_t work) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned int>(blocks);
}

}  // namespace

extern "C" int safework_fused_score_cuda(const safework::FusedScoreArgs* args, const int64_t* sorted_ids,
                                         const int64_t* order, int64_t group_size, void* stream_ptr) {
  const FusedScoreArgs a = *args;
  if (a.n <= 0) return 0;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  if (group_size > 0 && group_size <= kFusedMaxGroup) {
    const int64_t per_block = kThreads / group_size;
    const int64_t groups = a.n / group_size;
    const int64_t blocks = (groups + per_block - 1) / per_block;
    if (blocks > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidValue);
    const int threads = static_cast<int>(per_block * group_size);
    const size_t shared = static_cast<size_t>(threads) * sizeof(float);
    fused_contiguous_kernel<<<static_cast<unsigned int>(blocks), threads, shared, stream>>>(a, group_size,
                                                                                              per_block);
    return static_cast<int>(cudaGetLastError());
  }
  items_kernel<<<blocks_for(a.n), kThreads, 0, stream>>>(a);
  int code = static_cast<int>(cudaGetLastError());
  if (code != 0) return code;
  if (group_size > 0) {
    contiguous_groups_kernel<<<blocks_for(a.n / group_size), kThreads, 0, stream>>>(a, group_size);
  } else {
    sorted_groups_kernel<<<blocks_for(a.n), kThreads, 0, stream>>>(a, sorted_ids, order);
  }
  return static_cast<int>(cudaGetLastError());
}

extern "C" const char* safework_fused_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}
