//! Writing frames as a classic pcap file (LINKTYPE_ETHERNET, nanosecond timestamps,
//! little-endian headers whatever the host, so that a capture is byte-identical everywhere).

use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::CaptureError;

/// Snap length written in the file header (no frame is cut).
pub const SNAPLEN: u32 = 65535;

/// Writes `frames` (virtual time, bytes) to `out` as a pcap stream; returns the bytes written.
pub fn write<W: Write>(out: W, frames: &[(Duration, Vec<u8>)]) -> Result<usize, CaptureError> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
    };
    let mut w = PcapWriter::with_header(out, header)?;
    let mut n = 24;
    for (at, data) in frames {
        let len = u32::try_from(data.len()).map_err(|_| CaptureError::FrameTooLong(data.len()))?;
        n += w.write_packet(&PcapPacket::new(*at, len, data))?;
    }
    Ok(n)
}
