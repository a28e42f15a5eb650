//! TLS handshake bytes from the network: records and handshake messages cut at arbitrary
//! TCP chunk boundaries, malformed hellos and certificates must be parsed or counted as
//! anomalies, never panic. Input: a chunk size byte, the client bytes' length (u16), the client's
//! bytes, then the server's; the two directions are fed in alternating chunks. Seeds: TLS payloads of the shared captures (`$PORTCULLIS_DATA/pcaps`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_applayer::tls::TlsState;
use portcullis_applayer::{AppConfig, AppStats, Txs};
use portcullis_common::Direction;

fuzz_target!(|data: &[u8]| {
    // mode, client length (u16), client bytes, server bytes.
    let [mode, l0, l1, rest @ ..] = data else { return };
    let split = usize::from(u16::from_be_bytes([*l0, *l1])).min(rest.len());
    let (client, server) = rest.split_at(split);
    let cfg = AppConfig { tls_max_handshake: 16 * 1024, ..AppConfig::default() };
    let (mut txs, mut stats) = (Txs::default(), AppStats::default());
    let mut s = TlsState::default();
    let chunk = usize::from(*mode).max(1);
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
    s.close(&cfg, Direction::ToServer, &mut txs, &mut stats);
    s.close(&cfg, Direction::ToClient, &mut txs, &mut stats);
    assert!(txs.len() <= 1, "one TLS transaction per flow");
});
