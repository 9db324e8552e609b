"""A CredID attribution client written from the .proto files alone: the worked example for other languages.

It imports nothing from safework: only the modules ``grpc_tools.protoc`` generated from
``proto/safework/watermark/v1/{common,ttp,vendor}.proto`` into ``--gen``, plus ``grpcio`` and
``cryptography``. Every step follows the proto comments:

- mTLS with the party's certificate (``ca.pem``, ``<name>.pem``, ``<name>.key`` from the CredID PKI);
- ``AttributeRequest.signature`` built as ``RequestSignature`` in common.proto describes: the request
  serialised deterministically with ``signature`` unset, the length-prefixed envelope, pure Ed25519, a
  fresh 16-byte nonce, the time in Unix milliseconds, ``key_id`` = first 16 hex digits of SHA-256 of the raw
  public key;
- ``AttributeResponse.ttp_signature`` checked as ttp.proto describes.

Run by ``test_proto_only_client.py``:
``python -I proto_only_client.py --gen DIR --target HOST:PORT --pki DIR --name auditor --signing-key PEM
--ttp-public-key HEX --texts JSON``; prints one JSON object per text on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DOMAIN_TAG = b"safework-credid-v1"


def u64(value: int) -> bytes:
    """U64(x) of common.proto: 8 bytes, unsigned, big-endian."""
    return value.to_bytes(8, "big")


def length_prefixed(data: bytes) -> bytes:
    """L(b) of common.proto: U64(byte length of b) followed by b."""
    return u64(len(data)) + data


def grpc_method(module: Any, service: str, method: str) -> str:
    """The full gRPC method name, read from the generated descriptor: "/<package>.<Service>/<Method>"."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    return f"/{descriptor.full_name}/{descriptor.methods_by_name[method].name}"


def sign(request: Any, method: str, key: Ed25519PrivateKey, signer_id: str) -> Any:
    """Fill ``request.signature`` exactly as common.proto's RequestSignature describes."""
    request.ClearField("signature")  # step 1: signature unset (absent, not an empty message)
    body = request.SerializeToString(deterministic=True)  # step 2: canonical encoding
    nonce = os.urandom(16)
    timestamp_ms = int(time.time() * 1000)
    envelope = (  # step 3
        length_prefixed(DOMAIN_TAG)
        + length_prefixed(method.encode("utf-8"))
        + length_prefixed(signer_id.encode("utf-8"))
        + u64(timestamp_ms)
        + length_prefixed(nonce)
        + length_prefixed(body)
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = request.signature  # step 5 (after step 4, the signature itself)
    signature.signer_id = signer_id
    signature.key_id = hashlib.sha256(public).hexdigest()[:16]
    signature.nonce = nonce
    signature.timestamp_ms = timestamp_ms
    signature.signature = key.sign(envelope)  # step 4: pure Ed25519 over the envelope
    return request


def ttp_signature_valid(response: Any, ttp_public_key: bytes) -> bool:
    """ttp.proto: the TTP signs the deterministic serialisation of the response with ttp_signature cleared."""
    unsigned = type(response)()
    unsigned.CopyFrom(response)
    unsigned.ClearField("ttp_signature")
    try:
        Ed25519PublicKey.from_public_bytes(ttp_public_key).verify(
            response.ttp_signature, unsigned.SerializeToString(deterministic=True)
        )
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gen", type=Path, required=True, help="where protoc wrote safework/watermark/v1/")
    parser.add_argument("--target", required=True, help="the TTP's host:port")
    parser.add_argument("--pki", type=Path, required=True, help="folder with ca.pem, NAME.pem, NAME.key")
    parser.add_argument("--name", required=True, help="this client's name: certificate CN and signer_id")
    parser.add_argument("--signing-key", type=Path, required=True, help="PKCS#8 PEM Ed25519 private key")
    parser.add_argument("--ttp-public-key", required=True, help="the TTP's raw Ed25519 public key, hex")
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of suspect texts")
    args = parser.parse_args()

    sys.path.insert(0, str(args.gen))
    ttp_pb2 = importlib.import_module("safework.watermark.v1.ttp_pb2")
    ttp_pb2_grpc = importlib.import_module("safework.watermark.v1.ttp_pb2_grpc")
    gen = args.gen.resolve()
    loaded = {
        name: str(Path(module.__file__).resolve())
        for name, module in sys.modules.items()
        if name.split(".")[0] == "safework" and getattr(module, "__file__", None)
    }
    foreign = {name: path for name, path in loaded.items() if not Path(path).is_relative_to(gen)}
    if foreign:
        raise SystemExit(f"modules from outside the generated code were imported: {foreign}")

    key = serialization.load_pem_private_key(args.signing_key.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{args.signing_key} is not an Ed25519 private key")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(args.pki / "ca.pem").read_bytes(),
        private_key=(args.pki / f"{args.name}.key").read_bytes(),
        certificate_chain=(args.pki / f"{args.name}.pem").read_bytes(),
    )
    method = grpc_method(ttp_pb2, "TtpService", "Attribute")
    ttp_public_key = bytes.fromhex(args.ttp_public_key)
    with grpc.secure_channel(args.target, credentials) as channel:
        stub = ttp_pb2_grpc.TtpServiceStub(channel)
        for i, text in enumerate(json.loads(args.texts.read_text())):
            request = ttp_pb2.AttributeRequest(text=text, request_id=f"proto-only-{i}")
            response = stub.Attribute(sign(request, method, key, args.name), timeout=600)
            print(
                json.dumps(
                    {
                        "method": method,
                        "decision": ttp_pb2.Decision.Name(response.decision),
                        "vendor_id": response.vendor_id,
                        "seed_id": response.seed_id,
                        "model_id": response.identity.model_id,
                        "partial": response.partial,
                        "request_id": response.request_id,
                        "ttp_signature_valid": ttp_signature_valid(response, ttp_public_key),
                        "modules": loaded,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
