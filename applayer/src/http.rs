//! PLACEHOLDER: the http parser is being written on its own branch; this file only fixes the
//! interface the rest of the crate calls.

use portcullis_common::Direction;

use crate::{AppConfig, AppStats, Txs};

#[derive(Debug, Default)]
pub struct HttpState {}

impl HttpState {
    pub fn parse(&mut self, _cfg: &AppConfig, _dir: Direction, _data: &[u8], _txs: &mut Txs, _stats: &mut AppStats) {}
    pub fn close(&mut self, _cfg: &AppConfig, _dir: Direction, _txs: &mut Txs, _stats: &mut AppStats) {}
}
