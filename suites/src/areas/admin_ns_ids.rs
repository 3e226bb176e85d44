//! Area `admin`, namespace identifiers a configuration gives (UUID, NGUID, EUI-64): what a
//! host such as blktests asks the target to report, in Identify Namespace and in the
//! Namespace Identification Descriptor list.

use harness::wire::{IdentifyNamespaceRepr, NsDescriptorRepr, NIDT_EUI64, NIDT_NGUID, NIDT_UUID};

use super::admin::identify;
use crate::framework::target::{host_config, one_subsystem_with, PORT_A, SUB_A};
use crate::framework::{Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "admin";
const UUID: &str = "0f4c2a1e-9b3d-4c5e-8a7f-1b2c3d4e5f60";
const NGUID: &str = "00112233445566778899aabbccddeeff";
const EUI64: &str = "0a1b2c3d4e5f6071";

/// The cases of this file.
pub fn cases() -> Vec<Case> {
    vec![Case::new(AREA, "namespace-identifiers.configured", "ADM-NS-IDS-CONFIG", "a namespace given a UUID, an NGUID and an EUI-64 in the configuration reports them: Identify Namespace's NGUID and EUI64 fields, and descriptors EUI-64, NGUID and UUID in that order (NIDT ascending); a namespace given none keeps its derived NGUID and UUID and reports no EUI-64", &[Need::ControlPlane], |d: Dut| async move {
        let config = one_subsystem_with(&[1, 2], d.ns_format(), true).replacen(
            "nsid = 1\n",
            &format!("nsid = 1\nuuid = \"{UUID}\"\nnguid = \"{NGUID}\"\neui64 = \"{EUI64}\"\n"),
            1,
        );
        let t = d.target(&config).await?;
        let mut c = t.controller(PORT_A, host_config(SUB_A)).await?;
        let hex = |s: &str| -> Vec<u8> {
            let digits: Vec<char> = s.chars().filter(|c| *c != '-').collect();
            digits.chunks(2).map(|p| u8::from_str_radix(&p.iter().collect::<String>(), 16).unwrap_or(0)).collect()
        };
        let list = NsDescriptorRepr::parse_list(&identify(&mut c, 3, 1).await?).map_err(Failure::from)?;
        let got: Vec<(u8, Vec<u8>)> = list.iter().map(|x| (x.nidt, x.nid.clone())).collect();
        check_eq!(got, vec![(NIDT_EUI64, hex(EUI64)), (NIDT_NGUID, hex(NGUID)), (NIDT_UUID, hex(UUID))], "nsid 1: descriptors (NIDT, NID)");
        let ns = IdentifyNamespaceRepr::parse(&identify(&mut c, 0, 1).await?).map_err(Failure::from)?;
        check_eq!((ns.nguid.to_vec(), ns.eui64.to_vec()), (hex(NGUID), hex(EUI64)), "nsid 1: Identify Namespace NGUID and EUI64");
        let list = NsDescriptorRepr::parse_list(&identify(&mut c, 3, 2).await?).map_err(Failure::from)?;
        let kinds: Vec<u8> = list.iter().map(|x| x.nidt).collect();
        check_eq!(kinds, vec![NIDT_NGUID, NIDT_UUID], "nsid 2 (nothing configured): descriptor kinds");
        check!(list.iter().all(|x| x.nid != hex(NGUID) && x.nid != hex(UUID)), "nsid 2 reports nsid 1's identifiers");
        let ns = IdentifyNamespaceRepr::parse(&identify(&mut c, 0, 2).await?).map_err(Failure::from)?;
        check_eq!(ns.eui64, [0; 8], "nsid 2: Identify Namespace EUI64 (none configured)");
        check_eq!(ns.nguid.to_vec(), list[0].nid, "nsid 2: the derived NGUID, in both places");
        Ok(())
    })]
}
