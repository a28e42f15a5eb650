//! `portcullis features`: CICFlowMeter flows and features of capture files, as CSV with the
//! improved CIC-IDS2017 dataset's columns, so models trained on the dataset can be evaluated
//! on traffic Portcullis extracts. Flows are cut by the CICFlowMeter-faithful
//! [`CicFlowTable`], not by the engine's Suricata-style flow table: see
//! `portcullis_flowtable::features` for how the two relate.

use std::io::{self, Write};
use std::path::PathBuf;

use portcullis_common::Timestamp;
use portcullis_dataplane::{capture_files, CaptureError, CaptureFile, Decoded, Decoder, DecoderConfig};
use portcullis_flowtable::{CicConfig, CicFlow, CicFlowTable, CicStats, FEATURE_NAMES};

/// The columns before the features: the dataset's, without its row id (the features
/// "Dst Port" and "Protocol" sit here, in the dataset's places).
pub const CSV_KEY_COLUMNS: [&str; 7] = ["Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Protocol", "Timestamp"];

/// What an extraction read and produced.
#[derive(Debug, Clone, Default)]
pub struct ExtractSummary {
    pub files: usize,
    pub frames: u64,
    pub cic: CicStats,
    /// One line per capture file that could not be read to its end.
    pub capture_errors: Vec<String>,
}

/// Reads the captures (files or directories, in the order given, as one capture) and
/// returns their CICFlowMeter flows: the ones a later packet ended, in that order, then the
/// rest by start time.
pub fn extract_flows(inputs: &[PathBuf], cfg: CicConfig, decoder: DecoderConfig) -> Result<(Vec<CicFlow>, ExtractSummary), CaptureError> {
    let files = capture_files(inputs)?;
    let mut table = CicFlowTable::new(cfg);
    let mut dec = Decoder::new(decoder);
    let mut flows = Vec::new();
    let mut summary = ExtractSummary { files: files.len(), ..Default::default() };
    for path in &files {
        let mut cf = match CaptureFile::open(path) {
            Ok(c) => c,
            Err(e) => {
                summary.capture_errors.push(e.to_string());
                continue;
            }
        };
        loop {
            let frame = match cf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    summary.capture_errors.push(e.to_string());
                    break;
                }
            };
            summary.frames += 1;
            match dec.decode(&frame, summary.frames) {
                Decoded::Packet(m) => table.push(&m, &mut flows),
                // CICFlowMeter sees a tunnel's outer packet only as IP protocol 41, which it
                // does not track; the inner packet is the flow packet.
                Decoded::Tunneled { inner, .. } => table.push(&inner, &mut flows),
                _ => {}
            }
        }
    }
    table.finish(&mut flows);
    summary.cic = table.stats;
    Ok((flows, summary))
}

/// The dataset's timestamp format, in UTC: `2017-07-06 12:39:06.818901`.
pub fn format_timestamp(ts: Timestamp) -> String {
    match chrono::DateTime::from_timestamp(ts.secs(), (ts.subsec_micros() * 1000) as u32) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => ts.0.to_string(),
    }
}

/// Writes the header and one row per flow.
pub fn write_csv<W: Write>(flows: &[CicFlow], mut w: W) -> io::Result<()> {
    let header: Vec<&str> = CSV_KEY_COLUMNS.iter().chain(&FEATURE_NAMES[2..]).copied().collect();
    writeln!(w, "{}", header.join(","))?;
    for f in flows {
        let k = &f.key;
        let v = f.features.snapshot();
        write!(w, "{},{},{},{},{},{},{}", f.flow_id(), k.src_ip(), k.sport, k.dst_ip(), v[0], v[1], format_timestamp(f.features.start()))?;
        for x in &v[2..] {
            write!(w, ",{x}")?;
        }
        writeln!(w)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_format_is_the_datasets() {
        assert_eq!(format_timestamp(Timestamp(1_499_344_746_818_901)), "2017-07-06 12:39:06.818901");
    }

    #[test]
    fn header_is_the_datasets_without_id_and_label() {
        let mut out = Vec::new();
        write_csv(&[], &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,"));
        assert!(s.trim_end().ends_with(",ICMP Code,ICMP Type,Total TCP Flow Time"));
        assert_eq!(s.trim_end().split(',').count(), 7 + 81);
    }
}
