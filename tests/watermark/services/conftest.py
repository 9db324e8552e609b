"""The in-process CredID network the service tests share: a TTP (SQLite store) and two vendors on the
embedded model, every link mTLS, every request signed.

``net`` is module-scoped, so each test module gets its own network (a module may stop and restart a
vendor). The CA and every party's certificate and key are in ``net.folder`` (``ca.pem``, ``<name>.pem``,
``<name>.key``); the parties' Ed25519 signing keys are in ``net.keys``. ``auditor`` is a client allowed to
call Attribute; ``admin`` registered the vendors; ``stranger`` holds a vendor certificate but is not
registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from safework.core.rpc import RunningServer, build_server, connect
from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc, vendor_pb2_grpc
from safework.watermark.engine import load_watermarker
from safework.watermark.keys import WatermarkKey
from safework.watermark.security.pki import client_tls, init_ca, issue, server_tls
from safework.watermark.security.signing import SigningKey
from safework.watermark.ttp.attribution import GrpcVendorCaller
from safework.watermark.ttp.seeds import SeedIssuer
from safework.watermark.ttp.service import TtpConfig, TtpServicer, sign_as
from safework.watermark.ttp.sqlite_store import SQLiteStore
from safework.watermark.vendor.grants import GrantBook
from safework.watermark.vendor.service import VendorConfig, VendorServicer

VENDORS = ("acme", "globex")


@dataclass
class Net:
    folder: Path
    keys: dict[str, SigningKey]
    ttp: RunningServer
    store: SQLiteStore
    vendors: dict[str, RunningServer]
    servicers: dict[str, VendorServicer]
    ttp_servicer: TtpServicer

    def channel(self, name: str, target: str) -> grpc.Channel:
        return connect(target, tls=client_tls(self.folder, name), retries=0)

    def ttp_stub(self, name: str) -> Any:
        return ttp_pb2_grpc.TtpServiceStub(self.channel(name, self.ttp.target))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    folder = tmp_path_factory.mktemp("credid")
    init_ca(folder)
    for name, role in (
        ("ttp", "ttp"),
        ("admin", "admin"),
        ("auditor", "client"),
        ("stranger", "vendor"),
        *((v, "vendor") for v in VENDORS),
    ):
        issue(folder, name, role=role)  # type: ignore[arg-type]
    keys = {name: SigningKey.generate() for name in ("ttp", "admin", "auditor", "stranger", *VENDORS)}
    store = SQLiteStore(folder / "ttp.db")
    config = TtpConfig(
        key=keys["ttp"],
        issuer=SeedIssuer(bytes(range(32))),
        admins={"admin": {keys["admin"].key_id: keys["admin"].public_bytes()}},
        requesters={"auditor": {keys["auditor"].key_id: keys["auditor"].public_bytes()}},
    )
    caller = GrpcVendorCaller(client_tls(folder, "ttp"))
    servicer = TtpServicer(store, config, caller)
    ttp = build_server(
        "127.0.0.1:0",
        [(ttp_pb2_grpc.add_TtpServiceServicer_to_server, servicer)],
        tls=server_tls(folder, "ttp"),
    )
    base = load_watermarker("credid", WatermarkKey(bytes(16)), bits=16)
    vendors, servicers = {}, {}
    for i, name in enumerate(VENDORS):
        vendor = VendorServicer(
            VendorConfig(name, keys[name], bytes([i + 1]) * 32, keys["ttp"].public_bytes()),
            base,
            GrantBook(folder / f"{name}.grants.db"),
        )
        vendors[name] = build_server(
            "127.0.0.1:0",
            [(vendor_pb2_grpc.add_VendorServiceServicer_to_server, vendor)],
            tls=server_tls(folder, name),
        )
        servicers[name] = vendor
    built = Net(folder, keys, ttp, store, vendors, servicers, servicer)
    admin = built.ttp_stub("admin")
    for name in VENDORS:
        request = ttp_pb2.RegisterVendorRequest(
            vendor_id=name,
            keys=[
                ttp_pb2.VendorKey(
                    key_id=keys[name].key_id, public_key=keys[name].public_bytes(), algorithm="ed25519"
                )
            ],
            model_ids=["default"],
            scheme="credid",
            scheme_version="1",
            endpoint=vendors[name].target,
        )
        response = admin.RegisterVendor(sign_as(request, "RegisterVendor", keys["admin"], "admin"))
        assert response.ttp_public_key == keys["ttp"].public_bytes()
        servicers[name].request_grant(built.ttp_stub(name))
    yield built
    for server in (ttp, *vendors.values()):
        server.stop(0)
    caller.close()
    store.close()
