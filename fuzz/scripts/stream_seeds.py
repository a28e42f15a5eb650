#!/usr/bin/env python3
"""Seed corpus for the `stream_reassembly` fuzz target, from real captures.

For each TCP connection in the captures (pcap or pcapng; Ethernet, VLAN, SLL, SLL2, raw IP,
BSD loopback), writes one input per direction that carried data: the header the target
expects, then that direction's segments (sequence number, flags, payload) interleaved, in
capture order, with the other direction's ACK numbers. The captures stay where they are; only
the seeds are written, to the given directory (keep it outside the repository).

usage: stream_seeds.py OUT_DIR [CAPTURE_DIR ...]   (default: $PORTCULLIS_DATA/pcaps or
       ../shared/data/pcaps beside the workspace)
"""

import hashlib
import os
import struct
import sys

MAX_SEEDS = 400
# Per capture, so that a few big captures do not crowd out the variety of the small ones.
MAX_SEEDS_PER_CAPTURE = 4
MAX_SEED_BYTES = 64 << 10


def records(path):
    """Yields (linktype, frame bytes) for every packet of a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = "<" if magic[0] in (0xD4, 0x4D) else ">"
        linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack(end + "I", data[off + 8 : off + 12])[0]
            frame = data[off + 16 : off + 16 + incl]
            if len(frame) < incl:
                return
            yield linktype, frame
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        end = "<"
        links = []
        off = 0
        while off + 12 <= len(data):
            btype, blen = struct.unpack(end + "II", data[off : off + 8])
            if btype == 0x0A0D0D0A:
                end = "<" if data[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                btype, blen = struct.unpack(end + "II", data[off : off + 8])
                links = []
            if blen < 12 or off + blen > len(data):
                return
            body = data[off + 8 : off + blen - 4]
            if btype == 1 and len(body) >= 2:
                links.append(struct.unpack(end + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, cap = struct.unpack(end + "IIII", body[:16])
                if iface < len(links):
                    yield links[iface], body[20 : 20 + cap]
            elif btype == 3 and len(body) >= 4 and links:
                yield links[0], body[4:]
            off += blen


def ip_payload(linktype, frame):
    """Returns the IP packet inside a frame, or None."""
    if linktype == 1:  # Ethernet, with up to two VLAN tags
        off, ethertype = 14, struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            ethertype = struct.unpack(">H", frame[off + 2 : off + 4])[0]
            off += 4
        return frame[off:] if ethertype in (0x0800, 0x86DD) else None
    if linktype in (101, 12, 228, 229):  # raw IP
        return frame
    if linktype == 113:  # Linux SLL
        return frame[16:] if len(frame) >= 16 and frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:  # Linux SLL2
        return frame[20:] if len(frame) >= 20 and frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 0:  # BSD loopback
        return frame[4:]
    return None


def tcp_segment(ip):
    """Returns ((src, sport, dst, dport), seq, ack, flags, payload) for a TCP packet, or None."""
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        frag = struct.unpack(">H", ip[6:8])[0]
        if ip[9] != 6 or frag & 0x3FFF or ihl < 20:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl : max(ihl, min(total, len(ip)))]
    elif version == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, tcp = ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    if doff < 20 or doff > len(tcp):
        return None
    return (src, sport, dst, dport), seq, ack, tcp[13], tcp[doff:]


def header(isn, variant):
    """The target's 8-byte header: a few configurations, so caps and depth get exercised."""
    depth, ooo_bytes, ooo_segs, opts = [
        (0, 255, 31, 0x08 | 1),  # unlimited depth, big caps, bsd, midstream
        (16, 15, 3, 0x08 | 0),  # 1 KiB depth, small caps, first
        (0, 3, 1, 0x08 | 0x10 | 5),  # tiny caps and memcap, last
        (64, 63, 7, 2),  # 4 KiB depth, linux, no midstream
    ][variant % 4]
    return bytes([depth, ooo_bytes, ooo_segs, opts]) + struct.pack("<I", isn)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    dirs = sys.argv[2:]
    if not dirs:
        data = os.environ.get("PORTCULLIS_DATA") or os.path.join(
            os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data"
        )
        dirs = [os.path.join(data, "pcaps")]
    os.makedirs(out_dir, exist_ok=True)
    files = sorted(
        os.path.join(root, n)
        for d in dirs
        for root, _, names in os.walk(d)
        for n in names
        if n.endswith((".pcap", ".pcapng", ".cap"))
    )
    written = 0
    for path in files:
        # (canonical connection) -> list of (direction key, seq, ack, flags, payload)
        conns = {}
        try:
            for linktype, frame in records(path):
                ip = ip_payload(linktype, frame)
                seg = ip and tcp_segment(ip)
                if not seg:
                    continue
                key, seq, ack, flags, payload = seg
                canon = min(key, (key[2], key[3], key[0], key[1]))
                conns.setdefault(canon, []).append((key, seq, ack, flags, payload))
        except (struct.error, IndexError, OSError):
            pass
        from_this = 0
        for pkts in conns.values():
            if from_this >= MAX_SEEDS_PER_CAPTURE:
                break
            for direction in sorted({p[0] for p in pkts}):
                if not any(p[0] == direction and p[4] for p in pkts):
                    continue
                mine = [p for p in pkts if p[0] == direction]
                syn = [p for p in mine if p[3] & 0x02]
                isn = (syn[0] if syn else mine[0])[1]
                variant = int(hashlib.sha1(repr(direction).encode()).hexdigest(), 16)
                seed = bytearray(header(isn, variant))
                for key, seq, ack, flags, payload in pkts:
                    if key == direction:
                        payload = payload[:1500]
                        op = struct.pack("<BIBH", 0, (seq - isn) & 0xFFFFFFFF, flags, len(payload))
                        seed += op + payload
                    elif flags & 0x10:
                        seed += struct.pack("<BIBH", 1, (ack - isn) & 0xFFFFFFFF, 0, 0)
                    if len(seed) > MAX_SEED_BYTES:
                        break
                name = hashlib.sha1(seed).hexdigest()
                with open(os.path.join(out_dir, name), "wb") as f:
                    f.write(seed)
                written += 1
                from_this += 1
                if written >= MAX_SEEDS:
                    print(f"{written} seeds in {out_dir} (limit reached)")
                    return
    print(f"{written} seeds in {out_dir} from {len(files)} captures")


if __name__ == "__main__":
    main()
