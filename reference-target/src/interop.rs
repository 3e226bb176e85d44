//! Where the target is deliberately liberal in what it accepts: bytes a real initiator
//! sends that a strict reading of the specification would refuse, and that Linux nvmet
//! accepts. Each tolerance names the host that needs it and how it was found.

use harness::wire::{sgl_type, sqe_field, Sgl};

/// Clears SGL1's reserved bytes 14:12 when SGL1 is an unkeyed Data Block descriptor (type
/// 0h); returns whether any was set.
///
/// Linux nvme-rdma (`nvme_rdma_map_sg_inline`) writes the address, length and type of its
/// in-capsule descriptor over the previous command's bytes and leaves the rest: bytes
/// 14:12 keep the key of an earlier keyed descriptor. nvmet never reads them. Found by the
/// kernel initiator writing 4 KiB blocks to this target on soft-RoCE (every such write
/// failed with 0/11h until this tolerance); `docs/target.md` records the decision.
pub fn tolerate_sgl1_reserved(capsule: &mut [u8]) -> bool {
    let Some(bytes) = capsule.get_mut(sqe_field::DPTR) else {
        return false;
    };
    let mut sgl1 = Sgl::new_unchecked(bytes);
    if sgl1.desc_type() != sgl_type::DATA_BLOCK || sgl1.reserved() == 0 {
        return false;
    }
    sgl1.clear_reserved();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::wire::SglRepr;

    #[test]
    fn data_block_reserved_bytes_are_cleared_others_left_alone() {
        let mut c = vec![0u8; 64];
        // In-capsule Data Block (type 0h, subtype 1h: offset) with stale key bytes.
        c[32..36].copy_from_slice(&4096u32.to_le_bytes());
        c[36..39].copy_from_slice(&[0xaa, 0xbb, 0xcc]);
        c[39] = 0x01;
        assert!(SglRepr::parse_bytes(&c[24..40]).is_err());
        assert!(tolerate_sgl1_reserved(&mut c));
        assert!(SglRepr::parse_bytes(&c[24..40]).is_ok());
        assert!(!tolerate_sgl1_reserved(&mut c), "nothing left to clear");
        // A keyed descriptor (type 4h) carries its key there: untouched.
        let mut k = vec![0u8; 64];
        k[35..39].copy_from_slice(&[1, 2, 3, 4]);
        k[39] = 0x40;
        let before = k.clone();
        assert!(!tolerate_sgl1_reserved(&mut k));
        assert_eq!(k, before);
        // Too short to hold SGL1: nothing happens.
        assert!(!tolerate_sgl1_reserved(&mut [0u8; 20]));
    }
}
