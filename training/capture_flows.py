"""Which flows of the shared attack captures are the attack, what CIC-IDS2017 class each is
taught as, and which of them a model may learn from.

Every capture under pcaps/attacks and pcaps/scans is a recording of one attack, but a capture
can also hold traffic that is not the attack (background hosts, the victim's own lookups). A
rule below names the attack by its endpoints: the attacker's and the victim's addresses (None:
any address, for spoofed sources), the protocol and the victim's service port, all read from
the capture itself (flows extracted with `portcullis features`, packets listed with a pcap
reader) and checked against what SOURCES.md says the capture is. A flow is an attack flow when
it runs between the two endpoints in either direction and matches the protocol and port; every
other flow is a non-attack flow, never trained on and reported apart.

Split, per capture, by time: the attack flows are ordered by their start (Timestamp, then the
extractor's output order), the latest HELDOUT_FRAC are held out for evaluation
(eval_pcaps.py --attack-split-from) and never trained on; of the earlier ones the latest
VAL_FRAC_OF_TRAIN are validation rows (early stopping, thresholds), the rest fit the model.
Later flows of an attack are the ones a deployed model meets after it was taught the start of
that attack, which is what the held-out figures measure.

How each capture's attack flows were identified (flow counts: `portcullis features`, flows of
two packets or more):

- attacks/cic-ddos2019-synflood: CIC-DDoS2019 SYN flood, 26,316 packets in 0.7 s, all between
  172.16.0.5 (attacker) and 192.168.50.4 (victim), TCP; the victim answers on many ports, so
  no port is fixed. All flows are attack flows. Taught as DDoS (the CIC-IDS2017 class of a
  volumetric denial of service).
- attacks/synflood-spoofed-stopddos: SYN flood with spoofed sources, 37,841 SYNs to
  10.10.10.10 TCP/25565 (Minecraft) from 37,623 source addresses and no answers; the flows of
  two packets are source address/port pairs the generator repeated. Attacker: any, victim
  10.10.10.10:25565/TCP. Taught as DDoS.
- attacks/dhcp-flood-zeek: Zeek's DHCP flood trace, 250 DHCP requests in 5 s from UDP/68 to
  UDP/67, each from another (generated) client address in 128.2.4.0-128.2.5.255 to a server
  address in 128.2.7.0-128.2.8.255, each answered once: 250 two-packet flows. Attacker and
  victim: 128.2.0.0/16, UDP, server port 67; the trace holds nothing else. No CIC-IDS2017
  class fits, so it is taught as a new class, "DHCP Flood".
- attacks/ftp-bruteforce-zeek: Zeek's FTP brute force trace, 192.168.56.1 guessing passwords
  on 192.168.56.101 TCP/21. Taught as FTP-Patator.
- attacks/ssh-bruteforce-zeek: Zeek's SSH password guessing trace, 192.168.56.1 against
  192.168.56.103 TCP/22. Taught as SSH-Patator.
- scans/*masscan_tcp*: masscan SYN scan of ports 0-1000 from 172.31.15.102 to
  198.124.152.15; only the open ports' exchanges make flows of two packets. Taught as
  Portscan.
- scans/*masscan_udp*: the same for UDP; no answer, so no flow of two packets (no row).
- scans/*nmap_80_vanilla, *nmap_80_w_service_detection, *nmap_80_all: nmap runs from
  10.87.1.10 against 130.211.223.103 (host discovery on TCP/80 and TCP/443, the port 80 probe,
  then for -sV and -A the service probes and scripts over HTTP, and ICMP answers). Every flow
  between the two hosts, any protocol and port, is the scan. Taught as Portscan.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pandas as pd

HELDOUT_FRAC = 0.40
VAL_FRAC_OF_TRAIN = 0.25

TCP, UDP = 6, 17

# The class added for captures no CIC-IDS2017 class describes.
NEW_CLASSES = ["DHCP Flood"]


@dataclass(frozen=True)
class CaptureRule:
    """The attack in one capture. Addresses are single hosts or networks in CIDR form; None
    matches any address. `proto` None matches any protocol; `port` is the victim's port."""

    cls: str
    attacker: str | None
    victim: str | None
    proto: int | None
    port: int | None
    what: str


# Keyed by '<set>/<capture file stem>' (the name eval_pcaps.py reports).
RULES: dict[str, CaptureRule] = {
    "attacks/cic-ddos2019-synflood": CaptureRule(
        "DDoS", "172.16.0.5", "192.168.50.4", TCP, None, "SYN flood, CIC-DDoS2019"),
    "attacks/synflood-spoofed-stopddos": CaptureRule(
        "DDoS", None, "10.10.10.10", TCP, 25565, "SYN flood, spoofed sources"),
    "attacks/dhcp-flood-zeek": CaptureRule(
        "DHCP Flood", "128.2.0.0/16", "128.2.0.0/16", UDP, 67, "DHCP request flood"),
    "attacks/ftp-bruteforce-zeek": CaptureRule(
        "FTP-Patator", "192.168.56.1", "192.168.56.101", TCP, 21, "FTP password guessing"),
    "attacks/ssh-bruteforce-zeek": CaptureRule(
        "SSH-Patator", "192.168.56.1", "192.168.56.103", TCP, 22, "SSH password guessing"),
    "scans/attacks_scanners_masscan_tcp_0_1000_20190821": CaptureRule(
        "Portscan", "172.31.15.102", "198.124.152.15", TCP, None, "masscan TCP 0-1000"),
    "scans/attacks_scanners_masscan_udp_0_1000_20190821": CaptureRule(
        "Portscan", "172.31.15.102", "198.124.152.15", UDP, None, "masscan UDP 0-1000"),
    "scans/attacks_scanners_nmap_nmap_80_vanilla": CaptureRule(
        "Portscan", "10.87.1.10", "130.211.223.103", None, None, "nmap, port 80"),
    "scans/attacks_scanners_nmap_nmap_80_w_service_detection": CaptureRule(
        "Portscan", "10.87.1.10", "130.211.223.103", None, None, "nmap -sV, port 80"),
    "scans/attacks_scanners_nmap_nmap_80_all": CaptureRule(
        "Portscan", "10.87.1.10", "130.211.223.103", None, None, "nmap -A, port 80"),
}


def capture_key(set_name: str, file_name: str) -> str:
    stem = file_name.removesuffix(".csv")
    for ext in (".pcap", ".pcapng", ".cap"):
        stem = stem.removesuffix(ext)
    return f"{set_name}/{stem}"


def _in(addr: str, net: str | None) -> bool:
    if net is None:
        return True
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(net, strict=False)
    except ValueError:
        return False


def is_attack(df: pd.DataFrame, rule: CaptureRule) -> np.ndarray:
    """Per flow: does it run between the rule's attacker and victim (either direction), with
    its protocol, and the victim's port on the victim's side?"""
    out = np.zeros(len(df), dtype=bool)
    cols = zip(df["Src IP"].astype(str), df["Dst IP"].astype(str),
               pd.to_numeric(df["Src Port"], errors="coerce").fillna(-1).astype(int),
               pd.to_numeric(df["Dst Port"], errors="coerce").fillna(-1).astype(int),
               pd.to_numeric(df["Protocol"], errors="coerce").fillna(-1).astype(int))
    for i, (src, dst, sport, dport, proto) in enumerate(cols):
        if rule.proto is not None and proto != rule.proto:
            continue
        forward = _in(src, rule.attacker) and _in(dst, rule.victim) and rule.port in (None, dport)
        backward = _in(dst, rule.attacker) and _in(src, rule.victim) and rule.port in (None, sport)
        out[i] = forward or backward
    return out


def label(set_name: str, file_name: str, df: pd.DataFrame) -> pd.DataFrame | None:
    """For an attack capture's extracted flows: per row `cls` (the class taught, or "" for a
    non-attack flow) and `split` ("fit", "val", "heldout", or "" for non-attack flows). None
    for a capture without a rule."""
    rule = RULES.get(capture_key(set_name, file_name))
    if rule is None:
        return None
    attack = is_attack(df, rule)
    out = pd.DataFrame({"cls": np.where(attack, rule.cls, ""), "split": ""}, index=df.index)
    idx = np.flatnonzero(attack)
    if len(idx):
        ts = pd.to_datetime(df["Timestamp"].iloc[idx], format="mixed")
        order = idx[np.lexsort((idx, ts.to_numpy()))]  # by start time, then output order
        n = len(order)
        n_held = max(1, int(round(n * HELDOUT_FRAC)))  # a one-flow capture is evaluated, not taught
        n_train = n - n_held
        n_val = int(np.floor(n_train * VAL_FRAC_OF_TRAIN))
        split = np.array(["fit"] * (n_train - n_val) + ["val"] * n_val + ["heldout"] * n_held)
        out.iloc[order, out.columns.get_loc("split")] = split
    return out
