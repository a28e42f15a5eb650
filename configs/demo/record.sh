#!/usr/bin/env bash
# Record Portcullis' bundled demo capture (demo.pcap) from real traffic that is
# generated locally between Linux network namespaces. Nothing leaves the
# machine: every packet is sent between three namespaces created here, joined
# by veth pairs to a bridge inside the server namespace.
#
#   sudo configs/demo/record.sh [OUTPUT_DIR]
#
# OUTPUT_DIR defaults to the directory of this script. Writes:
#   demo.pcap         classic pcap (not pcapng), Ethernet, snaplen 65535
#   demo-phases.tsv   phase name, start/end offset (s) from the first packet,
#                     start/end absolute epoch time
#
# Hosts (all on one L2 segment, 10.77.0.0/24 and fd77::/64):
#   pc-srv  server    10.77.0.1   fd77::1   br0 (capture point), MAC 02:77:00:00:00:01
#   pc-cli  client    10.77.0.2   fd77::2   eth0,                MAC 02:77:00:00:00:02
#   pc-atk  attacker  10.77.0.66  fd77::66  eth0,                MAC 02:77:00:00:00:66
#
# Needs root, Debian bookworm (or similar), and a kernel with netns/veth/bridge.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="$(mkdir -p "${1:-$SCRIPT_DIR}" && cd "${1:-$SCRIPT_DIR}" && pwd)"
PCAP_OUT="$OUT_DIR/demo.pcap"
PHASES_OUT="$OUT_DIR/demo-phases.tsv"

NS_SRV=pc-srv
NS_CLI=pc-cli
NS_ATK=pc-atk
SRV4=10.77.0.1
CLI4=10.77.0.2
ATK4=10.77.0.66
SRV6=fd77::1
CLI6=fd77::2
ATK6=fd77::66
NAME=demo.portcullis.test

PAUSE="${PAUSE:-2}"          # seconds between phases
SSH_ATTEMPTS="${SSH_ATTEMPTS:-50}"
FLOOD_COUNT="${FLOOD_COUNT:-2000}"

if [[ $EUID -ne 0 ]]; then
    echo "record.sh: must run as root (it creates network namespaces)" >&2
    exit 1
fi

log() { printf '[record %s] %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- tools ----
need_install=()
declare -A PKG_FOR=(
    [tcpdump]=tcpdump [nmap]=nmap [hping3]=hping3 [openssl]=openssl
    [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
    [sshpass]=sshpass [dnsmasq]=dnsmasq-base [dig]=dnsutils [curl]=curl
    [ip]=iproute2 [ping]=iputils-ping [ethtool]=ethtool [python3]=python3
    [capinfos]=wireshark-common
)
for cmd in "${!PKG_FOR[@]}"; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
        need_install+=("${PKG_FOR[$cmd]}")
    fi
done
if ((${#need_install[@]})); then
    log "installing: ${need_install[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_install[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
SSHD_BIN="$(command -v sshd)"   # sshd insists on an absolute path

# -------------------------------------------------------------- cleanup ----
WORK="$(mktemp -d /tmp/portcullis-demo.XXXXXX)"
PIDS=()
TCPDUMP_PID=""

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$TCPDUMP_PID" ]] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        kill -INT "$TCPDUMP_PID" 2>/dev/null
        wait "$TCPDUMP_PID" 2>/dev/null
    fi
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    # Anything still left inside our own namespaces was started by this script.
    for ns in "$NS_SRV" "$NS_CLI" "$NS_ATK"; do
        if ip netns list 2>/dev/null | grep -qw "^$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null
            done
            ip netns del "$ns" 2>/dev/null
        fi
    done
    rm -rf "$WORK"
    if ((rc != 0)); then
        log "FAILED (exit $rc); namespaces and processes cleaned up"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

srv() { ip netns exec "$NS_SRV" "$@"; }
cli() { ip netns exec "$NS_CLI" "$@"; }
atk() { ip netns exec "$NS_ATK" "$@"; }

# Start a long-running process inside the server namespace; remember its pid.
# (`ip netns exec` execs the command, so $! is the server process itself.)
srv_bg() {
    local logname=$1; shift
    ip netns exec "$NS_SRV" "$@" >"$WORK/$logname.log" 2>&1 &
    PIDS+=("$!")
}

wait_tcp() {   # wait_tcp PORT: until something listens on PORT in pc-srv
    local port=$1 i
    for i in $(seq 1 50); do
        if srv ss -Hltn "sport = :$port" | grep -q .; then return 0; fi
        sleep 0.1
    done
    log "server on tcp/$port did not come up"; return 1
}

# ------------------------------------------------------------- topology ----
for ns in "$NS_SRV" "$NS_CLI" "$NS_ATK"; do
    if ip netns list | grep -qw "^$ns"; then
        echo "record.sh: namespace $ns already exists; remove it first" >&2
        exit 1
    fi
done

log "creating namespaces"
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip netns add "$NS_ATK"

for ns in "$NS_SRV" "$NS_CLI" "$NS_ATK"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 \
        net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.use_tempaddr=0 net.ipv6.conf.default.use_tempaddr=0
done

srv ip link add br0 type bridge stp_state 0 mcast_snooping 0
srv ip link set br0 address 02:77:00:00:00:01
srv ip addr add "$SRV4/24" dev br0
srv ip addr add "$SRV6/64" dev br0 nodad

# veth pairs: <host>-eth0 in the host ns, its peer enslaved to br0 in pc-srv
mkveth() {   # mkveth NS PORTNAME MAC IPV4 IPV6
    local ns=$1 port=$2 mac=$3 v4=$4 v6=$5
    ip link add "$port" type veth peer name "${port}-peer"
    ip link set "$port" netns "$NS_SRV"
    ip link set "${port}-peer" netns "$ns"
    ip -n "$ns" link set "${port}-peer" name eth0
    ip -n "$ns" link set eth0 address "$mac"
    ip -n "$ns" addr add "$v4/24" dev eth0
    ip -n "$ns" addr add "$v6/64" dev eth0 nodad
    srv ip link set "$port" master br0
    # Real-wire-like frames: no TSO/GSO/GRO super-packets, real checksums.
    ip netns exec "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null 2>&1 || true
    srv ethtool -K "$port" tx off tso off gso off gro off >/dev/null 2>&1 || true
    srv ip link set "$port" up
    ip -n "$ns" link set eth0 up
}
mkveth "$NS_CLI" vcli 02:77:00:00:00:02 "$CLI4" "$CLI6"
mkveth "$NS_ATK" vatk 02:77:00:00:00:66 "$ATK4" "$ATK6"
srv ethtool -K br0 tx off tso off gso off gro off >/dev/null 2>&1 || true
srv ip link set br0 up

# ------------------------------------------------------------- servers ----
log "preparing servers"
mkdir -p "$WORK/www" "$WORK/ssh"

# HTTP/1.1 server (keep-alive, chunked request and response bodies, POST).
cat >"$WORK/httpd.py" <<'PY'
import json, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = b"".join(b"line %05d: portcullis demo payload 0123456789abcdef\n" % i
               for i in range(400))  # ~21 KB, spans many segments
INDEX = (b"<!doctype html><html><head><title>Portcullis demo</title></head>"
         b"<body><h1>It works</h1><p>demo.portcullis.test</p></body></html>\n")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DemoHTTP/1.0"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))

    def send_body(self, code, body, ctype="text/html; charset=utf-8"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def do_GET(self):
        if self.path in ("/", "/index.html"):
            self.send_body(200, INDEX)
        elif self.path == "/big.txt":
            self.send_body(200, BIG, "text/plain")
        elif self.path == "/status":
            self.send_body(200, json.dumps({"status": "ok",
                "port": self.server.server_address[1]}).encode() + b"\n",
                "application/json")
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                part = b"chunk %d of the streamed response\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_body(404, b"<html><body>not found</body></html>\n")

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        body = self.read_body()
        resp = {"path": self.path, "received_bytes": len(body)}
        if self.path == "/login":
            resp["result"] = "invalid credentials"
            self.send_body(401, json.dumps(resp).encode() + b"\n", "application/json")
        else:
            self.send_body(201, json.dumps(resp).encode() + b"\n", "application/json")

class DualStack(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

DualStack(("::", int(sys.argv[1])), H).serve_forever()
PY

# Self-signed certificate for the TLS servers, made fresh every run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" -days 2 \
    -subj "/CN=$NAME/O=Portcullis demo" \
    -addext "subjectAltName=DNS:$NAME,DNS:api.portcullis.test,IP:$SRV4" \
    >/dev/null 2>&1

# SSH server: password auth on, PAM off (no 2 s failure delay). Only
# non-existent user names are tried, so no login can ever succeed.
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_ed25519" -C demo
mkdir -p /run/sshd && chmod 755 /run/sshd
cat >"$WORK/ssh/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $WORK/ssh/host_ed25519
PidFile $WORK/ssh/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
PermitEmptyPasswords no
MaxAuthTries 3
MaxStartups 100:30:200
LoginGraceTime 20
UseDNS no
LogLevel INFO
EOF

srv_bg httpd80 python3 "$WORK/httpd.py" 80
srv_bg httpd8080 python3 "$WORK/httpd.py" 8080
srv_bg dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
    --no-hosts --no-dhcp-interface=br0 --user=root --group=root --pid-file= \
    --interface=br0 --bind-interfaces --port=53 --log-queries --log-facility=- \
    --local=/portcullis.test/ \
    --host-record="$NAME,$SRV4,$SRV6" \
    --host-record="www.portcullis.test,$SRV4,$SRV6" \
    --host-record="api.portcullis.test,$SRV4" \
    --mx-host=portcullis.test,mail.portcullis.test,10 \
    --txt-record="$NAME,v=portcullis-demo; generated locally; no third-party data" \
    --txt-record="_policy.portcullis.test,mode=inline,action=drop,ruleset=demo-2024,owner=secops,contact=secops@portcullis.test,note=this record is long enough to be interesting over tcp"
srv_bg tls443 openssl s_server -quiet -www -accept 443 \
    -cert "$WORK/tls.crt" -key "$WORK/tls.key"
srv_bg tls4443 openssl s_server -quiet -www -accept 4443 \
    -cert "$WORK/tls.crt" -key "$WORK/tls.key"
srv_bg sshd "$SSHD_BIN" -D -e -f "$WORK/ssh/sshd_config"

for p in 80 8080 443 4443 22 53; do wait_tcp "$p"; done
# Let IPv6 link-local setup / MLD chatter settle before capturing.
sleep 1.5

# -------------------------------------------------------------- capture ----
log "starting capture on pc-srv/br0"
ip netns exec "$NS_SRV" tcpdump -i br0 -s 65535 -U -Z root -w "$WORK/demo.pcap" \
    >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
for i in $(seq 1 50); do
    grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done
sleep 0.5

: >"$WORK/phases.raw"
PHASE=""; PHASE_T0=""
phase_begin() { PHASE=$1; PHASE_T0=$(date +%s.%6N); log "phase: $PHASE"; }
phase_end() {
    printf '%s\t%s\t%s\n' "$PHASE" "$PHASE_T0" "$(date +%s.%6N)" >>"$WORK/phases.raw"
    sleep "$PAUSE"
}

CURL=(curl -sS --max-time 10)   # bodies go to /dev/null via the redirect below

# 1. HTTP --------------------------------------------------------------------
phase_begin http
cli "${CURL[@]}" "http://$SRV4/" >/dev/null
# keep-alive: three requests on one TCP connection (Host: demo.portcullis.test)
cli "${CURL[@]}" --resolve "$NAME:80:$SRV4" \
    "http://$NAME/index.html" "http://$NAME/big.txt" "http://$NAME/missing.php" >/dev/null
# form POST (gets 401)
cli "${CURL[@]}" --resolve "$NAME:80:$SRV4" \
    -d 'username=alice&password=wonderland' "http://$NAME/login" >/dev/null
# chunked request body, then chunked response body
head -c 3000 /dev/zero | tr '\0' 'A' >"$WORK/upload.bin"
cli "${CURL[@]}" --resolve "$NAME:80:$SRV4" -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/upload.bin" \
    "http://$NAME/upload" >/dev/null
cli "${CURL[@]}" --resolve "$NAME:80:$SRV4" "http://$NAME/chunked" >/dev/null
# non-standard port
cli "${CURL[@]}" "http://$SRV4:8080/status" >/dev/null
# IPv6
cli "${CURL[@]}" -g "http://[$SRV6]/" >/dev/null
phase_end

# 2. DNS ---------------------------------------------------------------------
phase_begin dns
DIG=(dig +tries=1 +time=2 +noall +answer)
cli "${DIG[@]}" "@$SRV4" "$NAME" A >/dev/null
cli "${DIG[@]}" "@$SRV4" "$NAME" AAAA >/dev/null
cli "${DIG[@]}" "@$SRV4" "$NAME" TXT >/dev/null
cli "${DIG[@]}" "@$SRV4" www.portcullis.test A >/dev/null
cli "${DIG[@]}" "@$SRV4" portcullis.test MX >/dev/null
cli "${DIG[@]}" "@$SRV4" nosuchhost.portcullis.test A >/dev/null   # NXDOMAIN
cli "${DIG[@]}" "@$SRV6" "$NAME" AAAA >/dev/null                   # over IPv6
cli "${DIG[@]}" +tcp "@$SRV4" _policy.portcullis.test TXT >/dev/null  # over TCP
phase_end

# 3. TLS ---------------------------------------------------------------------
phase_begin tls
# TLS 1.3 via curl (SNI demo.portcullis.test)
cli "${CURL[@]}" -k --resolve "$NAME:443:$SRV4" "https://$NAME/" >/dev/null
# TLS 1.2 via curl
cli "${CURL[@]}" -k --tlsv1.2 --tls-max 1.2 --resolve "$NAME:443:$SRV4" "https://$NAME/" >/dev/null
# openssl s_client, TLS 1.3 and TLS 1.2, with explicit SNI
printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$NAME" |
    cli timeout 10 openssl s_client -connect "$SRV4:443" -servername "$NAME" \
        -tls1_3 -quiet -ign_eof >/dev/null 2>&1 || true
printf 'GET / HTTP/1.0\r\nHost: api.portcullis.test\r\n\r\n' |
    cli timeout 10 openssl s_client -connect "$SRV4:443" -servername api.portcullis.test \
        -tls1_2 -quiet -ign_eof >/dev/null 2>&1 || true
# non-standard TLS port
cli "${CURL[@]}" -k --resolve "$NAME:4443:$SRV4" "https://$NAME:4443/" >/dev/null
phase_end

# 4. ICMP --------------------------------------------------------------------
phase_begin icmp
cli ping -q -c 4 -i 0.2 -W 2 "$SRV4" >/dev/null
cli ping -q -6 -c 4 -i 0.2 -W 2 "$SRV6" >/dev/null
phase_end

# 5. Port scan from the attacker ---------------------------------------------
phase_begin scan_tcp_syn
atk nmap -n -sS -T4 --max-retries 1 -p 1-200,443,4443,8080 "$SRV4" \
    -oN "$WORK/nmap-tcp.txt" >/dev/null
phase_end

phase_begin scan_udp
atk nmap -n -sU -T4 --max-retries 1 -p 53,69,123,161,500 "$SRV4" \
    -oN "$WORK/nmap-udp.txt" >/dev/null
phase_end

# 6. SSH brute force from the attacker ---------------------------------------
phase_begin ssh_bruteforce
USERS=(admin oracle test deploy ubnt)
PASSWORDS=(123456 password admin letmein qwerty root toor changeme
           welcome 111111)
: >"$WORK/bf.list"
for ((i = 0; i < SSH_ATTEMPTS; i++)); do
    printf '%s %s\n' "${USERS[i % ${#USERS[@]}]}" \
        "${PASSWORDS[(i / ${#USERS[@]}) % ${#PASSWORDS[@]}]}" >>"$WORK/bf.list"
done
export SRV4
# 4 in parallel, one password per connection
atk xargs -P 4 -L 1 sh -c \
    'sshpass -p "$2" ssh -F /dev/null -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no \
        -o NumberOfPasswordPrompts=1 -o ConnectTimeout=5 -o LogLevel=ERROR \
        "$1@$SRV4" true >/dev/null 2>&1 || true' bf <"$WORK/bf.list"
phase_end

# 7. SYN flood from the attacker ---------------------------------------------
phase_begin syn_flood
atk hping3 -q -S -p 80 -c "$FLOOD_COUNT" -i u500 "$SRV4" >"$WORK/hping3.log" 2>&1 || true
phase_end

# ------------------------------------------------------------- finish -----
log "stopping capture"
sleep 0.5
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=""
cat "$WORK/tcpdump.log" >&2

cp "$WORK/demo.pcap" "$PCAP_OUT"
chmod 644 "$PCAP_OUT"

# Phase offsets relative to the first packet in the capture.
FIRST_TS=$(tcpdump -r "$PCAP_OUT" -c 1 -tt -n 2>/dev/null | awk '{print $1; exit}')
{
    printf '# phase\tstart_offset_s\tend_offset_s\tstart_epoch\tend_epoch\n'
    awk -F'\t' -v t0="$FIRST_TS" \
        '{ printf "%s\t%.3f\t%.3f\t%s\t%s\n", $1, $2 - t0, $3 - t0, $2, $3 }' \
        "$WORK/phases.raw"
} >"$PHASES_OUT"
chmod 644 "$PHASES_OUT"

log "nmap TCP result:"; grep -E '^[0-9]+/tcp' "$WORK/nmap-tcp.txt" >&2 || true
log "nmap UDP result:"; grep -E '^[0-9]+/udp' "$WORK/nmap-udp.txt" >&2 || true
log "sshd failed attempts: $(grep -c 'Failed password\|Invalid user' "$WORK/sshd.log" || true)"
log "wrote $PCAP_OUT ($(stat -c %s "$PCAP_OUT") bytes) and $PHASES_OUT"
cat "$PHASES_OUT" >&2
