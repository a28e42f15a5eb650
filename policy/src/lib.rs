//! Verdicts and enforcement. This crate owns the policy engine that fuses rule hits and
//! model scores into actions (alert, drop, block, rate-limit, quarantine) under a playbook,
//! the allowlist no verdict may override, the decision log, and the nftables enforcer that
//! speaks netlink to one table of its own. Input: alerts and scores; output: decisions and
//! netlink batches. It never inspects packets.

pub mod nft;
