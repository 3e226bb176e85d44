//! A PCI function's address as sysfs and `lspci -D` write it: `DDDD:BB:DD.F`.

use core::fmt;
use std::str::FromStr;

use super::VfioError;

/// A PCI function: domain, bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// Domain (segment), 16 bits.
    pub domain: u16,
    /// Bus, 8 bits.
    pub bus: u8,
    /// Device, 0..=31.
    pub device: u8,
    /// Function, 0..=7.
    pub function: u8,
}

impl FromStr for PciAddress {
    type Err = VfioError;

    /// `0000:01:00.0`; the domain may be left out (`01:00.0`). Hex digits, any case.
    fn from_str(s: &str) -> Result<PciAddress, VfioError> {
        let bad = |why: &str| VfioError::BadAddress {
            text: s.to_string(),
            why: why.to_string(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (domain, bus, rest) = match parts.as_slice() {
            [d, b, r] => (*d, *b, *r),
            [b, r] => ("0000", *b, *r),
            _ => return Err(bad("expected DDDD:BB:DD.F (domain:bus:device.function)")),
        };
        let (device, function) = rest
            .split_once('.')
            .ok_or_else(|| bad("expected DD.F after the bus (device.function)"))?;
        let hex = |text: &str, width: usize, field: &str| {
            if text.is_empty() || text.len() > width || !text.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(bad(&format!(
                    "{field} {text:?} is not 1 to {width} hex digits"
                )));
            }
            u32::from_str_radix(text, 16).map_err(|_| bad(field))
        };
        let domain = hex(domain, 4, "domain")? as u16;
        let bus = hex(bus, 2, "bus")? as u8;
        let device = hex(device, 2, "device")?;
        if device > 0x1f {
            return Err(bad(&format!("device {device:#x} is above 1fh")));
        }
        let function = hex(function, 1, "function")?;
        if function > 7 {
            return Err(bad(&format!("function {function} is above 7")));
        }
        Ok(PciAddress {
            domain,
            bus,
            device: device as u8,
            function: function as u8,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_sysfs_writes() {
        let a: PciAddress = "0000:01:00.0".parse().unwrap();
        assert_eq!(
            a,
            PciAddress {
                domain: 0,
                bus: 1,
                device: 0,
                function: 0
            }
        );
        assert_eq!(a.to_string(), "0000:01:00.0");
        let b: PciAddress = "1f:1F.7".parse().unwrap();
        assert_eq!(b.to_string(), "0000:1f:1f.7");
    }

    #[test]
    fn errors_name_the_field() {
        let why = |s: &str| match s.parse::<PciAddress>() {
            Err(VfioError::BadAddress { why, .. }) => why,
            other => panic!("{s}: {other:?}"),
        };
        assert!(why("0000:01:20.0").contains("device 0x20"));
        assert!(why("0000:01:00.8").contains("function 8"));
        assert!(why("0000:1g:00.0").contains("bus \"1g\""));
        assert!(why("00000:01:00.0").contains("domain"));
        assert!(why("01-00.0").contains("DDDD:BB:DD.F"));
        assert!(why("0000:01:00").contains("device.function"));
    }

    proptest::proptest! {
        #[test]
        fn display_parses_back(domain: u16, bus: u8, device in 0u8..32, function in 0u8..8) {
            let a = PciAddress { domain, bus, device, function };
            proptest::prop_assert_eq!(a.to_string().parse::<PciAddress>(), Ok(a));
        }

        #[test]
        fn any_text_parses_or_is_refused(s in ".{0,20}") {
            let _ = s.parse::<PciAddress>();
        }
    }
}
