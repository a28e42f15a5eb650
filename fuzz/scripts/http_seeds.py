#!/usr/bin/env python3
"""Seed corpus for the `applayer_http` fuzz target, from real captures.

For each TCP connection whose client bytes start with an HTTP method or whose server bytes
start with "HTTP/", writes one input: the target's 3-byte header (the client byte count as
u16 little-endian, then a knob byte), the client's payload bytes in sequence order, then the
server's. Retransmitted bytes are dropped; gaps are not filled. The captures stay where they
are; only the seeds are written, to the given directory (keep it outside the repository).

usage: http_seeds.py OUT_DIR [CAPTURE_DIR ...]   (default: $PORTCULLIS_DATA/pcaps)
"""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from stream_seeds import ip_payload, records, tcp_segment  # noqa: E402

MAX_SEEDS = 400
MAX_PER_CAPTURE = 40
MAX_CLIENT = 16 << 10
MAX_SERVER = 48 << 10
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"OPTIONS ", b"CONNECT ", b"DELETE ")


def in_order(segs, cap):
    """The payload bytes of one direction by sequence number, each byte once."""
    if not segs:
        return b""
    base = min(s for s, _ in segs)
    out = bytearray()
    for seq, payload in sorted(segs, key=lambda x: (x[0] - base) & 0xFFFFFFFF):
        off = (seq - base) & 0xFFFFFFFF
        if off + len(payload) <= len(out):
            continue
        if off > len(out):
            break
        out += payload[len(out) - off :]
        if len(out) >= cap:
            break
    return bytes(out[:cap])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir, dirs = sys.argv[1], sys.argv[2:]
    if not dirs:
        data = os.environ.get("PORTCULLIS_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data")
        dirs = [os.path.join(data, "pcaps")]
    os.makedirs(out_dir, exist_ok=True)
    files = sorted(os.path.join(r, n) for d in dirs for r, _, ns in os.walk(d) for n in ns if n.endswith((".pcap", ".pcapng", ".cap")))
    written = 0
    for path in files:
        conns = {}
        try:
            for linktype, frame in records(path):
                ip = ip_payload(linktype, frame)
                seg = ip and tcp_segment(ip)
                if not seg:
                    continue
                key, seq, _, flags, payload = seg
                canon = min(key, (key[2], key[3], key[0], key[1]))
                c = conns.setdefault(canon, {"client": None, "segs": {}})
                if c["client"] is None and (flags & 0x12 == 0x02 or payload):
                    c["client"] = key if flags & 0x12 != 0x12 else (key[2], key[3], key[0], key[1])
                if payload:
                    c["segs"].setdefault(key, []).append((seq, payload))
        except Exception:  # a damaged capture still gives what it had
            pass
        from_this = 0
        for c in conns.values():
            if c["client"] is None or from_this >= MAX_PER_CAPTURE:
                continue
            k = c["client"]
            client = in_order(c["segs"].get(k, []), MAX_CLIENT)
            server = in_order(c["segs"].get((k[2], k[3], k[0], k[1]), []), MAX_SERVER)
            if not (client.startswith(METHODS) or server.startswith(b"HTTP/")):
                continue
            knobs = hashlib.sha1(client[:64] + server[:64]).digest()[0]
            seed = len(client).to_bytes(2, "little") + bytes([knobs]) + client + server
            with open(os.path.join(out_dir, hashlib.sha1(seed).hexdigest()), "wb") as f:
                f.write(seed)
            written += 1
            from_this += 1
            if written >= MAX_SEEDS:
                print(f"{written} seeds in {out_dir} (limit reached)")
                return
    print(f"{written} seeds in {out_dir} from {len(files)} captures")


if __name__ == "__main__":
    main()
