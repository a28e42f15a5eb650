//! `outputs.webhook`: a `decision` event whose action the config names is POSTed, as the
//! EVE JSON itself (`Content-Type: application/json`), to one URL, from the webhook's own
//! thread. One attempt per decision: a refused connection, a timeout or an answer other
//! than 2xx counts the decision as lost and the attempt as an error (a chat or paging relay
//! that is down should not make the sensor replay old decisions later). http:// only:
//! ureq is built without TLS; put a local relay in front of an https endpoint. The request
//! goes directly to the URL's host, ignoring `http_proxy`, so a daemon's environment
//! cannot reroute its alarms.

use std::sync::atomic::Ordering::Relaxed;

use ureq::Agent;

use crate::queue::{Control, Deliver, Queued};
use crate::{OutputsError, SinkStats, WebhookConfig};

#[derive(Debug)]
struct Poster {
    agent: Agent,
    url: String,
}

impl Deliver for Poster {
    fn deliver(&mut self, batch: &[Vec<u8>], ctl: &Control) {
        for body in batch {
            if ctl.giving_up() {
                ctl.counters.lost.fetch_add(1, Relaxed);
                continue;
            }
            let r = self.agent.post(&self.url).header("Content-Type", "application/json").header("User-Agent", concat!("portcullis/", env!("CARGO_PKG_VERSION"))).send(&body[..]);
            match r {
                Ok(resp) if resp.status().is_success() => {
                    ctl.counters.sent.fetch_add(1, Relaxed);
                }
                Ok(resp) => {
                    ctl.counters.lost.fetch_add(1, Relaxed);
                    ctl.counters.error(format!("{}: HTTP {}", self.url, resp.status()));
                }
                Err(e) => {
                    ctl.counters.lost.fetch_add(1, Relaxed);
                    ctl.counters.error(format!("{}: {e}", self.url));
                }
            }
        }
    }
}

/// The webhook sink and its routing rule.
#[derive(Debug)]
pub(crate) struct Webhook {
    actions: Vec<String>,
    queue: Queued,
}

impl Webhook {
    pub fn start(cfg: &WebhookConfig) -> Result<Webhook, OutputsError> {
        let agent: Agent = Agent::config_builder().timeout_global(Some(cfg.timeout)).http_status_as_error(false).proxy(None).build().into();
        let queue = Queued::spawn("webhook", cfg.url.clone(), cfg.buffer, Poster { agent, url: cfg.url.clone() })?;
        Ok(Webhook { actions: cfg.actions.clone(), queue })
    }

    /// Queues the decision when its action is one the config names.
    pub fn offer(&mut self, action: &str, line: &[u8]) {
        if self.actions.iter().any(|a| a == action) {
            self.queue.push(line);
        }
    }

    pub fn stats(&self) -> SinkStats {
        self.queue.stats()
    }

    pub fn close(&mut self, deadline: std::time::Instant) {
        self.queue.close(deadline);
    }
}
