//! `filetype: redis`: events pushed onto a list (`LPUSH`/`RPUSH`, Suricata's `mode: list`
//! and `rpush`) or published on a channel (`PUBLISH`, `mode: channel`), from the sink's own
//! thread over one blocking connection. A batch of queued events is one `LPUSH`/`RPUSH` with
//! many values (the list's order is the order of the events, as one push per event would
//! give) or one pipeline of `PUBLISH`es, so a busy sensor pays one round trip per batch.

use std::time::Duration;

use redis::{Client, Connection, ConnectionAddr};

use crate::queue::{Link, Queued, Reconnecting};
use crate::{OutputsError, RedisConfig, RedisMode};

/// A connect that has not finished by then is an outage (a filtered port never answers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply slower than this means the server is stuck; the connection is made again.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct RedisLink {
    cfg: RedisConfig,
    client: Option<Client>,
}

impl Link for RedisLink {
    type Conn = Connection;

    fn connect(&mut self) -> Result<Connection, String> {
        let client = match &self.client {
            Some(c) => c,
            None => {
                let c = Client::open(ConnectionAddr::Tcp(self.cfg.server.clone(), self.cfg.port)).map_err(|e| e.to_string())?;
                self.client.insert(c)
            }
        };
        let con = client.get_connection_with_timeout(CONNECT_TIMEOUT).map_err(|e| format!("cannot connect: {e}"))?;
        con.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
        con.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
        Ok(con)
    }

    fn send(&mut self, con: &mut Connection, batch: &[Vec<u8>]) -> Result<(), String> {
        let r = match self.cfg.mode {
            RedisMode::Lpush | RedisMode::Rpush => redis::cmd(self.cfg.mode.command()).arg(&self.cfg.key).arg(batch).exec(con),
            RedisMode::Publish => {
                let mut p = redis::pipe();
                for l in batch {
                    p.cmd("PUBLISH").arg(&self.cfg.key).arg(l).ignore();
                }
                p.exec(con)
            }
        };
        r.map_err(|e| format!("{} failed: {e}", self.cfg.mode.command()))
    }

    fn describe(&self) -> String {
        target(&self.cfg)
    }
}

fn target(cfg: &RedisConfig) -> String {
    let mode = match cfg.mode {
        RedisMode::Lpush => "lpush",
        RedisMode::Rpush => "rpush",
        RedisMode::Publish => "publish",
    };
    format!("redis {}:{} {mode} {}", cfg.server, cfg.port, cfg.key)
}

pub(crate) fn sink(cfg: &RedisConfig) -> Result<Queued, OutputsError> {
    let link = RedisLink { cfg: cfg.clone(), client: None };
    Queued::spawn("redis", target(cfg).trim_start_matches("redis ").to_string(), cfg.buffer, Reconnecting::new(link))
}
