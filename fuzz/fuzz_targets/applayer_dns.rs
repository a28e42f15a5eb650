//! DNS messages from the network: datagrams and TCP streams cut at arbitrary points must be
//! parsed or counted as anomalies, never panic or loop. Input: a mode byte, the client bytes' length
//! (u16), the client's bytes, then the server's.
//! Seeds: DNS payloads of the shared captures (`$PORTCULLIS_DATA/pcaps`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_applayer::dns::DnsState;
use portcullis_applayer::{AppConfig, AppStats, Txs};
use portcullis_common::Direction;

fuzz_target!(|data: &[u8]| {
    // mode, client length (u16), client bytes, server bytes. Mode bit 0: TCP, else UDP
    // (each side's bytes one datagram); the other bits: the TCP chunk size.
    let [mode, l0, l1, rest @ ..] = data else { return };
    let split = usize::from(u16::from_be_bytes([*l0, *l1])).min(rest.len());
    let (client, server) = rest.split_at(split);
    let cfg = AppConfig { dns_max_tcp_message: 512, max_txs: 8, ..AppConfig::default() };
    let (mut txs, mut stats) = (Txs::default(), AppStats::default());
    let tcp = mode & 1 == 1;
    let mut s = DnsState::new(tcp);
    if tcp {
        let chunk = usize::from(mode >> 1).max(1);
        let (mut c, mut sv) = (client.chunks(chunk), server.chunks(chunk));
        loop {
            let (a, b) = (c.next(), sv.next());
            if a.is_none() && b.is_none() {
                break;
            }
            if let Some(a) = a {
                s.parse(&cfg, Direction::ToServer, a, &mut txs, &mut stats);
            }
            if let Some(b) = b {
                s.parse(&cfg, Direction::ToClient, b, &mut txs, &mut stats);
            }
        }
    } else {
        s.datagram(&cfg, Direction::ToServer, client, &mut txs, &mut stats);
        s.datagram(&cfg, Direction::ToClient, server, &mut txs, &mut stats);
        // The same bytes the other way round: wrong-direction messages.
        s.datagram(&cfg, Direction::ToClient, client, &mut txs, &mut stats);
    }
    s.close(&cfg, Direction::ToServer, &mut txs, &mut stats);
    s.close(&cfg, Direction::ToClient, &mut txs, &mut stats);
    assert!(txs.len() <= cfg.max_txs);
});
