//! The HTTP/1.x parser on arbitrary bytes: the input (after a 3-byte header) is split at a
//! fuzzer-chosen point into the client's and the server's bytes; each is fed in two chunks,
//! interleaved, then both directions close. Any input must give transactions and counted
//! anomalies, never a panic or a loop. Small caps make the truncation, decompression and
//! header limits reachable. Seeds: HTTP connections from the shared captures, written by
//! `fuzz/scripts/http_seeds.py`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_applayer::http::HttpState;
use portcullis_applayer::{AppConfig, AppStats, Buf, Txs};
use portcullis_common::Direction::{ToClient, ToServer};

fuzz_target!(|data: &[u8]| {
    let [s0, s1, knobs, rest @ ..] = data else { return };
    let split = usize::from(u16::from_le_bytes([*s0, *s1])).min(rest.len());
    let (client, server) = rest.split_at(split);
    let cfg = if knobs & 1 == 0 {
        AppConfig::default()
    } else {
        AppConfig {
            http_request_body_limit: 64,
            http_response_body_limit: 64,
            http_decompress_limit: 256,
            http_max_header_bytes: 512,
            max_txs: 4,
            ..AppConfig::default()
        }
    };
    // Where each direction's bytes are cut in two, from the other knob bits.
    let cut = |b: &[u8], shift: u8| b.len() * usize::from((knobs >> shift) & 7) / 7;
    let (c1, c2) = client.split_at(cut(client, 1));
    let (s1, s2) = server.split_at(cut(server, 4));
    let mut state = HttpState::default();
    let mut txs = Txs::default();
    let mut stats = AppStats::default();
    for (dir, chunk) in [(ToServer, c1), (ToClient, s1), (ToServer, c2), (ToClient, s2)] {
        state.parse(&cfg, dir, chunk, &mut txs, &mut stats);
    }
    let (first, second) = if knobs & 0x80 == 0 { (ToServer, ToClient) } else { (ToClient, ToServer) };
    state.close(&cfg, first, &mut txs, &mut stats);
    state.close(&cfg, second, &mut txs, &mut stats);
    assert!(txs.len() <= cfg.max_txs.max(1));
    for tx in txs.iter() {
        // Every buffer of a transaction is final once pushed; bodies respect their caps.
        for (buf, _, bytes) in tx.buffers() {
            match buf {
                Buf::HttpRequestBody => assert!(bytes.len() <= cfg.http_request_body_limit),
                Buf::HttpResponseBody => assert!(bytes.len() <= cfg.http_response_body_limit),
                _ => {}
            }
        }
    }
});
