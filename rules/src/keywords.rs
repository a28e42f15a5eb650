//! The one table of rule keywords: for each Suricata keyword Portcullis knows, whether the
//! engine supports it, whether it belongs to app-layer inspection (and which sticky buffer it
//! names), or whether it is a known keyword that is not supported. A keyword missing from the
//! table is unknown. The parser consults this table before anything else, so a keyword is
//! classified in exactly one place.

use std::collections::HashMap;
use std::sync::LazyLock;

/// What Portcullis does with a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Parsed into the AST and supported by the detection engine.
    Engine,
    /// A sticky buffer (app-layer): later payload keywords inspect this buffer, named by its
    /// canonical dotted name.
    Sticky(&'static str),
    /// A legacy content modifier (`http_uri`): moves the content before it into the sticky
    /// buffer of this canonical name.
    Modifier(&'static str),
    /// A transformation of the current sticky buffer (`dotprefix`, `to_lowercase`, ...).
    Transform,
    /// App-layer inspection that is not a buffer (`app-layer-protocol`, `urilen`,
    /// `ssl_state`, ...).
    AppLayer,
    /// A Suricata keyword that Portcullis does not implement (yet).
    Unsupported,
}

impl Support {
    /// Whether rules using the keyword need app-layer inspection.
    pub fn is_app_layer(self) -> bool {
        matches!(self, Support::Sticky(_) | Support::Modifier(_) | Support::AppLayer)
    }
}

use Support::*;

/// The registry. Names are Suricata 7's, aliases listed separately with the same canonical
/// buffer name.
pub const KEYWORDS: &[(&str, Support)] = &[
    // Rule metadata.
    ("msg", Engine),
    ("sid", Engine),
    ("rev", Engine),
    ("gid", Engine),
    ("classtype", Engine),
    ("priority", Engine),
    ("metadata", Engine),
    ("reference", Engine),
    ("target", Engine),
    // Payload.
    ("content", Engine),
    ("nocase", Engine),
    ("depth", Engine),
    ("offset", Engine),
    ("distance", Engine),
    ("within", Engine),
    ("startswith", Engine),
    ("endswith", Engine),
    ("fast_pattern", Engine),
    ("rawbytes", Engine),
    ("pcre", Engine),
    ("isdataat", Engine),
    ("bsize", Engine),
    ("dsize", Engine),
    ("byte_test", Engine),
    ("byte_jump", Engine),
    ("byte_extract", Engine),
    ("pkt_data", Engine),
    // Flow and headers.
    ("flow", Engine),
    ("flags", Engine),
    ("ttl", Engine),
    ("itype", Engine),
    ("icode", Engine),
    ("icmp_id", Engine),
    ("icmp_seq", Engine),
    ("ip_proto", Engine),
    ("sameip", Engine),
    ("ack", Engine),
    ("seq", Engine),
    ("window", Engine),
    ("id", Engine),
    ("flowbits", Engine),
    ("threshold", Engine),
    ("detection_filter", Engine),
    ("noalert", Engine),
    // `tag` is accepted and ignored: tagging further packets of a session is a logging
    // feature, and ignoring it changes no alert.
    ("tag", Engine),
    // HTTP sticky buffers and their legacy sticky aliases.
    ("http.uri", Sticky("http.uri")),
    ("http.uri.raw", Sticky("http.uri.raw")),
    ("http.method", Sticky("http.method")),
    ("http.request_line", Sticky("http.request_line")),
    ("http_request_line", Sticky("http.request_line")),
    ("http.request_body", Sticky("http.request_body")),
    ("http.response_body", Sticky("http.response_body")),
    ("http.response_line", Sticky("http.response_line")),
    ("http_response_line", Sticky("http.response_line")),
    ("http.header", Sticky("http.header")),
    ("http.header.raw", Sticky("http.header.raw")),
    ("http.header_names", Sticky("http.header_names")),
    ("http_header_names", Sticky("http.header_names")),
    ("http.request_header", Sticky("http.request_header")),
    ("http.response_header", Sticky("http.response_header")),
    ("http.cookie", Sticky("http.cookie")),
    ("http.user_agent", Sticky("http.user_agent")),
    ("http.host", Sticky("http.host")),
    ("http.host.raw", Sticky("http.host.raw")),
    ("http.accept", Sticky("http.accept")),
    ("http_accept", Sticky("http.accept")),
    ("http.accept_enc", Sticky("http.accept_enc")),
    ("http_accept_enc", Sticky("http.accept_enc")),
    ("http.accept_lang", Sticky("http.accept_lang")),
    ("http_accept_lang", Sticky("http.accept_lang")),
    ("http.connection", Sticky("http.connection")),
    ("http_connection", Sticky("http.connection")),
    ("http.content_type", Sticky("http.content_type")),
    ("http_content_type", Sticky("http.content_type")),
    ("http.content_len", Sticky("http.content_len")),
    ("http_content_len", Sticky("http.content_len")),
    ("http.referer", Sticky("http.referer")),
    ("http.start", Sticky("http.start")),
    ("http_start", Sticky("http.start")),
    ("http.protocol", Sticky("http.protocol")),
    ("http_protocol", Sticky("http.protocol")),
    ("http.stat_code", Sticky("http.stat_code")),
    ("http.stat_msg", Sticky("http.stat_msg")),
    ("http.server", Sticky("http.server")),
    ("http.location", Sticky("http.location")),
    ("http2.header", Sticky("http2.header")),
    ("http2.header_name", Sticky("http2.header_name")),
    ("file.data", Sticky("file.data")),
    ("file_data", Sticky("file.data")),
    ("file.name", Sticky("file.name")),
    ("base64_data", Sticky("base64_data")),
    ("dce_stub_data", Sticky("dce_stub_data")),
    // HTTP legacy content modifiers.
    ("http_uri", Modifier("http.uri")),
    ("uricontent", Modifier("http.uri")),
    ("http_raw_uri", Modifier("http.uri.raw")),
    ("http_method", Modifier("http.method")),
    ("http_client_body", Modifier("http.request_body")),
    ("http_server_body", Modifier("http.response_body")),
    ("http_header", Modifier("http.header")),
    ("http_raw_header", Modifier("http.header.raw")),
    ("http_cookie", Modifier("http.cookie")),
    ("http_user_agent", Modifier("http.user_agent")),
    ("http_host", Modifier("http.host")),
    ("http_raw_host", Modifier("http.host.raw")),
    ("http_stat_code", Modifier("http.stat_code")),
    ("http_stat_msg", Modifier("http.stat_msg")),
    ("http_referer", Modifier("http.referer")),
    // DNS, TLS, SSH, SMB, Kerberos, SIP, QUIC, ... sticky buffers.
    ("dns.query", Sticky("dns.query")),
    ("dns_query", Sticky("dns.query")),
    ("dns.answer.name", Sticky("dns.answer.name")),
    ("dns.query.name", Sticky("dns.query.name")),
    ("tls.sni", Sticky("tls.sni")),
    ("tls_sni", Sticky("tls.sni")),
    ("tls.cert_subject", Sticky("tls.cert_subject")),
    ("tls_cert_subject", Sticky("tls.cert_subject")),
    ("tls.cert_issuer", Sticky("tls.cert_issuer")),
    ("tls_cert_issuer", Sticky("tls.cert_issuer")),
    ("tls.cert_serial", Sticky("tls.cert_serial")),
    ("tls_cert_serial", Sticky("tls.cert_serial")),
    ("tls.cert_fingerprint", Sticky("tls.cert_fingerprint")),
    ("tls_cert_fingerprint", Sticky("tls.cert_fingerprint")),
    ("tls.certs", Sticky("tls.certs")),
    ("tls.subjectaltname", Sticky("tls.subjectaltname")),
    ("tls.random", Sticky("tls.random")),
    ("ja3.hash", Sticky("ja3.hash")),
    ("ja3_hash", Sticky("ja3.hash")),
    ("ja3.string", Sticky("ja3.string")),
    ("ja3_string", Sticky("ja3.string")),
    ("ja3s.hash", Sticky("ja3s.hash")),
    ("ja3s.string", Sticky("ja3s.string")),
    ("ssh.proto", Sticky("ssh.proto")),
    ("ssh_proto", Sticky("ssh.proto")),
    ("ssh.software", Sticky("ssh.software")),
    ("ssh_software", Sticky("ssh.software")),
    ("ssh.hassh", Sticky("ssh.hassh")),
    ("ssh.hassh.string", Sticky("ssh.hassh.string")),
    ("ssh.hassh.server", Sticky("ssh.hassh.server")),
    ("ssh.hassh.server.string", Sticky("ssh.hassh.server.string")),
    ("smb.named_pipe", Sticky("smb.named_pipe")),
    ("smb.share", Sticky("smb.share")),
    ("smb.ntlmssp_user", Sticky("smb.ntlmssp_user")),
    ("smb.ntlmssp_domain", Sticky("smb.ntlmssp_domain")),
    ("krb5.cname", Sticky("krb5.cname")),
    ("krb5.sname", Sticky("krb5.sname")),
    ("sip.method", Sticky("sip.method")),
    ("sip.uri", Sticky("sip.uri")),
    ("sip.protocol", Sticky("sip.protocol")),
    ("sip.stat_code", Sticky("sip.stat_code")),
    ("sip.stat_msg", Sticky("sip.stat_msg")),
    ("quic.sni", Sticky("quic.sni")),
    ("quic.ua", Sticky("quic.ua")),
    ("quic.version", Sticky("quic.version")),
    ("quic.cyu.hash", Sticky("quic.cyu.hash")),
    ("quic.cyu.string", Sticky("quic.cyu.string")),
    ("snmp.community", Sticky("snmp.community")),
    ("mqtt.connect.clientid", Sticky("mqtt.connect.clientid")),
    ("mqtt.publish.topic", Sticky("mqtt.publish.topic")),
    ("mqtt.publish.message", Sticky("mqtt.publish.message")),
    ("smtp.helo", Sticky("smtp.helo")),
    ("smtp.mail_from", Sticky("smtp.mail_from")),
    ("smtp.rcpt_to", Sticky("smtp.rcpt_to")),
    ("ftp.command", Sticky("ftp.command")),
    ("ftp.command_data", Sticky("ftp.command_data")),
    ("dhcp.hostname", Sticky("dhcp.hostname")),
    // Transformations (Suricata 7).
    ("dotprefix", Transform),
    ("strip_whitespace", Transform),
    ("compress_whitespace", Transform),
    ("to_lowercase", Transform),
    ("to_uppercase", Transform),
    ("to_md5", Transform),
    ("to_sha1", Transform),
    ("to_sha256", Transform),
    ("url_decode", Transform),
    ("xor", Transform),
    ("header_lowercase", Transform),
    ("strip_pseudo_headers", Transform),
    ("pcrexform", Transform),
    ("from_base64", Transform),
    // App-layer keywords that are not buffers.
    ("app-layer-protocol", AppLayer),
    ("app-layer-event", AppLayer),
    ("app-layer-state", AppLayer),
    ("urilen", AppLayer),
    ("ssl_state", AppLayer),
    ("ssl_version", AppLayer),
    ("tls.version", AppLayer),
    ("tls_cert_notbefore", AppLayer),
    ("tls_cert_notafter", AppLayer),
    ("tls_cert_expired", AppLayer),
    ("tls_cert_valid", AppLayer),
    ("tls.store", AppLayer),
    ("tls.fingerprint", AppLayer),
    ("dns.opcode", AppLayer),
    ("dce_iface", AppLayer),
    ("dce_opnum", AppLayer),
    ("ftpbounce", AppLayer),
    ("ftpdata_command", AppLayer),
    ("filename", AppLayer),
    ("fileext", AppLayer),
    ("filemagic", AppLayer),
    ("filestore", AppLayer),
    ("filemd5", AppLayer),
    ("filesha1", AppLayer),
    ("filesha256", AppLayer),
    ("filesize", AppLayer),
    ("krb5_msg_type", AppLayer),
    ("krb5_err_code", AppLayer),
    ("http2.frametype", AppLayer),
    ("http2.errorcode", AppLayer),
    ("http2.settings", AppLayer),
    ("ssh.protoversion", AppLayer),
    ("ssh.softwareversion", AppLayer),
    ("snmp.version", AppLayer),
    ("snmp.pdu_type", AppLayer),
    ("modbus", AppLayer),
    ("dnp3_func", AppLayer),
    ("dnp3_ind", AppLayer),
    ("dnp3_obj", AppLayer),
    ("dnp3_data", AppLayer),
    ("enip_command", AppLayer),
    ("cip_service", AppLayer),
    ("dhcp.leasetime", AppLayer),
    ("ike.exchtype", AppLayer),
    // Known Suricata keywords Portcullis does not implement.
    ("xbits", Unsupported),
    ("flowint", Unsupported),
    ("stream_size", Unsupported),
    ("base64_decode", Unsupported),
    ("asn1", Unsupported),
    ("decode-event", Unsupported),
    ("stream-event", Unsupported),
    ("engine-event", Unsupported),
    ("fragbits", Unsupported),
    ("fragoffset", Unsupported),
    ("tos", Unsupported),
    ("ipopts", Unsupported),
    ("icmp_seq.raw", Unsupported),
    ("tcp.mss", Unsupported),
    ("tcp.hdr", Unsupported),
    ("udp.hdr", Unsupported),
    ("ipv4.hdr", Unsupported),
    ("ipv6.hdr", Unsupported),
    ("icmpv4.hdr", Unsupported),
    ("icmpv6.hdr", Unsupported),
    ("icmpv6.mtu", Unsupported),
    ("flow.age", Unsupported),
    ("flow.pkts", Unsupported),
    ("flow.bytes", Unsupported),
    ("iprep", Unsupported),
    ("geoip", Unsupported),
    ("datarep", Unsupported),
    ("dataset", Unsupported),
    ("luajit", Unsupported),
    ("lua", Unsupported),
    ("replace", Unsupported),
    ("prefilter", Unsupported),
    ("byte_math", Unsupported),
    ("entropy", Unsupported),
    ("dotprefix_legacy", Unsupported),
    ("pktvar", Unsupported),
    ("flowvar", Unsupported),
    ("config", Unsupported),
    ("requires", Unsupported),
    ("l3_proto", Unsupported),
    ("template", Unsupported),
    ("bypass", Unsupported),
    ("tcp.flags", Unsupported),
    ("transform", Unsupported),
];

/// The sticky buffers the app-layer parsers fill (`portcullis-applayer`'s `Buf`; a test in
/// `portcullis-detect` keeps the two lists equal). Rules using any other sticky buffer are
/// skipped as app-layer.
pub const APP_BUFFERS: &[&str] = &[
    "http.uri",
    "http.uri.raw",
    "http.method",
    "http.request_line",
    "http.request_body",
    "http.response_line",
    "http.response_body",
    "http.header",
    "http.header.raw",
    "http.header_names",
    "http.cookie",
    "http.user_agent",
    "http.host",
    "http.host.raw",
    "http.accept",
    "http.accept_enc",
    "http.accept_lang",
    "http.connection",
    "http.content_type",
    "http.content_len",
    "http.referer",
    "http.start",
    "http.protocol",
    "http.stat_code",
    "http.stat_msg",
    "http.server",
    "http.location",
    "file.data",
    "dns.query",
    "tls.sni",
    "tls.cert_subject",
    "tls.cert_issuer",
    "tls.cert_serial",
    "tls.cert_fingerprint",
    "tls.certs",
    "tls.subjectaltname",
    "tls.random",
    "ja3.hash",
    "ja3.string",
    "ja3s.hash",
    "ja3s.string",
    "ssh.proto",
    "ssh.software",
];

/// App-layer protocols Portcullis detects, as rule headers name them.
pub const APP_PROTOS: &[&str] = &["http", "http1", "tls", "ssl", "dns", "ssh"];

static TABLE: LazyLock<HashMap<&'static str, Support>> = LazyLock::new(|| KEYWORDS.iter().copied().collect());

/// How Portcullis treats `name`; `None` for a keyword Suricata 7 does not have either (as far
/// as this table knows).
pub fn lookup(name: &str) -> Option<Support> {
    TABLE.get(name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates_and_canonical_buffers_are_their_own_keyword() {
        let mut seen = std::collections::HashSet::new();
        for (name, s) in KEYWORDS {
            assert!(seen.insert(name), "{name} listed twice");
            if let Sticky(c) | Modifier(c) = s {
                assert_eq!(lookup(c), Some(Sticky(c)), "{name} maps to {c}, which is not a sticky buffer in the table");
            }
        }
        assert_eq!(lookup("http_uri"), Some(Modifier("http.uri")));
        assert_eq!(lookup("content"), Some(Engine));
        assert_eq!(lookup("frobnicate"), None);
    }
}
