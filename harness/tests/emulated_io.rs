//! Backend commands through the real queue protocol: data paths and status codes.

mod emulated_rig;

use emulated_rig::{rig, rig_ns, Opts, Rig};
use harness::backend::emulated::{LbaFormat, Namespace};
use harness::wire::DsmRangeRepr;
use harness::wire::{CqeRepr, DsmCommand, RwCommand, SqeCommand, Status, WriteZeroesCommand};
use rstest::rstest;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[rstest]
#[case::f512(LbaFormat::L512)]
#[case::f4096(LbaFormat::L4096)]
#[case::f512_8(LbaFormat::L512_8)]
#[case::f4096_8(LbaFormat::L4096_8)]
#[case::f4096_64(LbaFormat::L4096_64)]
#[tokio::test(start_paused = true)]
async fn write_then_read_back(#[case] format: LbaFormat) {
    let mut r = rig_ns(format, 64);
    let bs = format.lba_data_size() as usize;
    let data = pattern(4 * bs, 3);
    r.put(0, &data);
    let c = r.run(1, SqeCommand::Write(RwCommand::new(10, 4)), 0).await;
    assert_eq!(c.status, Status::SUCCESS);
    let c = r
        .run(1, SqeCommand::Read(RwCommand::new(10, 4)), 0x8_0000)
        .await;
    assert_eq!(c.status, Status::SUCCESS);
    // data and metadata of every block, interleaved
    assert_eq!(r.get(0x8_0000, data.len()), data);
    let direct = r
        .ctrl
        .with_namespace(1, |ns| ns.read_blocks(10, 4).unwrap());
    assert_eq!(direct.unwrap(), data);
    let k = r.ctrl.counters();
    assert_eq!((k.commands, k.completions, k.errors), (2, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn lba_out_of_range() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    for (slba, n) in [(16, 1), (15, 2), (u64::MAX, 1)] {
        let c = r.run(1, SqeCommand::Read(RwCommand::new(slba, n)), 0).await;
        assert_eq!(
            c.status,
            Status::LBA_OUT_OF_RANGE.with_dnr(),
            "slba {slba} n {n}"
        );
    }
    let c = r.run(1, SqeCommand::Write(RwCommand::new(15, 2)), 0).await;
    assert_eq!(c.status, Status::LBA_OUT_OF_RANGE.with_dnr());
    assert_eq!(r.ctrl.counters().errors, 4);
}

#[tokio::test(start_paused = true)]
async fn invalid_namespace_and_opcode() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    let c = r.run(2, SqeCommand::Read(RwCommand::new(0, 1)), 0).await;
    assert_eq!(c.status, Status::INVALID_NAMESPACE.with_dnr());
    let c = r
        .run(
            1,
            SqeCommand::Other {
                opcode: 0x05,
                cdw: [0; 6],
            },
            0,
        )
        .await;
    assert_eq!(c.status, Status::INVALID_OPCODE.with_dnr());
}

#[tokio::test(start_paused = true)]
async fn flush_succeeds() {
    let mut r = rig_ns(LbaFormat::L4096, 16);
    assert_eq!(r.run(1, SqeCommand::Flush, 0).await.status, Status::SUCCESS);
    assert_eq!(
        r.run(u32::MAX, SqeCommand::Flush, 0).await.status,
        Status::SUCCESS
    );
    assert_eq!(
        r.run(9, SqeCommand::Flush, 0).await.status,
        Status::INVALID_NAMESPACE.with_dnr()
    );
}

#[rstest]
#[case::plain(false)]
#[case::deallocate(true)]
#[tokio::test(start_paused = true)]
async fn write_zeroes(#[case] deac: bool) {
    let mut r = rig_ns(LbaFormat::L512_8, 16);
    r.put(0, &vec![0xee; 520 * 8]);
    r.run(1, SqeCommand::Write(RwCommand::new(0, 8)), 0).await;
    let wz = WriteZeroesCommand {
        slba: 2,
        nlb: 2,
        deac,
        ..Default::default()
    };
    let c = r.run(1, SqeCommand::WriteZeroes(wz), 0).await;
    assert_eq!(c.status, Status::SUCCESS);
    r.run(1, SqeCommand::Read(RwCommand::new(0, 8)), 0x1_0000)
        .await;
    let back = r.get(0x1_0000, 520 * 8);
    for (i, b) in back.chunks(520).enumerate() {
        let want = if (2..5).contains(&i) { 0 } else { 0xee };
        assert!(b.iter().all(|&x| x == want), "block {i}");
    }
    let wz = WriteZeroesCommand {
        slba: 15,
        nlb: 1,
        ..Default::default()
    };
    let c = r.run(1, SqeCommand::WriteZeroes(wz), 0).await;
    assert_eq!(c.status, Status::LBA_OUT_OF_RANGE.with_dnr());
}

/// Deallocates `ranges` of namespace 1 with one Dataset Management command, its range list
/// placed at the end of the rig's first MiB.
async fn deallocate(r: &mut Rig, ranges: &[DsmRangeRepr]) -> CqeRepr {
    const LIST: u64 = 0x10_0000 - 64;
    r.put(LIST, &DsmRangeRepr::emit_list(ranges));
    let d = DsmCommand {
        nr: ranges.len() as u8 - 1,
        ad: true,
        ..Default::default()
    };
    r.run(1, SqeCommand::DatasetManagement(d), LIST).await
}

#[tokio::test(start_paused = true)]
async fn dsm_deallocate_reads_back_zeroes() {
    let mut r = rig_ns(LbaFormat::L4096, 32);
    r.put(0, &vec![0x5a; 4096 * 32]);
    r.run(1, SqeCommand::Write(RwCommand::new(0, 32)), 0).await;
    let c = deallocate(&mut r, &[DsmRangeRepr::new(1, 2), DsmRangeRepr::new(20, 4)]).await;
    assert_eq!(c.status, Status::SUCCESS);
    r.run(1, SqeCommand::Read(RwCommand::new(0, 32)), 0).await;
    let back = r.get(0, 4096 * 32);
    for (i, b) in back.chunks(4096).enumerate() {
        let zero = matches!(i, 1 | 2 | 20..=23);
        let want = if zero { 0 } else { 0x5a };
        assert!(b.iter().all(|&x| x == want), "block {i}");
    }
    let c = deallocate(&mut r, &[DsmRangeRepr::new(30, 4)]).await;
    assert_eq!(c.status, Status::LBA_OUT_OF_RANGE.with_dnr());
}

#[tokio::test(start_paused = true)]
async fn file_namespace_persists_across_reopen() {
    let path = std::env::temp_dir().join(format!(
        "nvmf-conform-backend-io-{}.img",
        std::process::id()
    ));
    let data = pattern(2 * 4104, 9);
    {
        let mut r = rig(Opts::default());
        let ns = Namespace::file(1, &path, LbaFormat::L4096_8, 8).unwrap();
        r.ctrl.add_namespace(ns).unwrap();
        r.put(0, &data);
        let c = r.run(1, SqeCommand::Write(RwCommand::new(3, 2)), 0).await;
        assert_eq!(c.status, Status::SUCCESS);
        assert_eq!(r.run(1, SqeCommand::Flush, 0).await.status, Status::SUCCESS);
    }
    {
        let mut r = rig(Opts::default());
        let ns = Namespace::file(1, &path, LbaFormat::L4096_8, 8).unwrap();
        r.ctrl.add_namespace(ns).unwrap();
        let c = r
            .run(1, SqeCommand::Read(RwCommand::new(3, 2)), 0x4000)
            .await;
        assert_eq!(c.status, Status::SUCCESS);
        assert_eq!(r.get(0x4000, data.len()), data);
    }
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test(start_paused = true)]
async fn namespace_management() {
    let r = rig_ns(LbaFormat::L512, 4);
    assert!(r
        .ctrl
        .add_namespace(Namespace::ram(1, LbaFormat::L512, 4).unwrap())
        .is_err());
    r.ctrl
        .add_namespace(Namespace::ram(3, LbaFormat::L4096, 4).unwrap())
        .unwrap();
    assert_eq!(r.ctrl.namespace_ids(), vec![1, 3]);
    assert_eq!(r.ctrl.remove_namespace(3).unwrap().nsid(), 3);
    assert!(r.ctrl.remove_namespace(3).is_err());
}
