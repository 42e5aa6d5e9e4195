//! Property tests of the readers (bounded case counts, so CI stays fast): whatever the bytes, the
//! CSV, IDX, safetensors/model-metadata and checkpoint readers return a value or an error —
//! never a panic — and a checkpoint that loads can be handed to training without a panic.

use crate::common::write;
use proptest::prelude::*;

/// A valid small model and checkpoint, trained once (through the library).
fn valid_files() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static FILES: std::sync::OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        let mut s = String::from("a,b,y\n");
        for i in 0..40 {
            s += &format!("{},{},{}\n", i % 7, i % 5, i % 2);
        }
        std::fs::write(&csv, s).unwrap();
        let settings = downhill::settings::Settings {
            data: csv.display().to_string(),
            hidden: vec![3],
            epochs: Some(2),
            out: Some(dir.path().join("run")),
            ..Default::default()
        };
        downhill::run::train(&settings, &mut downhill::train::NoObserver).unwrap();
        (
            std::fs::read(dir.path().join("run/model.safetensors")).unwrap(),
            std::fs::read(dir.path().join("run/checkpoint.safetensors")).unwrap(),
            std::fs::read(dir.path().join("run/metrics.jsonl")).unwrap(),
        )
    })
}

/// `base` with a few bytes overwritten, some inserted, and maybe truncated.
fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(at, v) in edits {
        if b.is_empty() {
            break;
        }
        let i = at % b.len();
        if v % 3 == 0 {
            b.insert(i, v);
        } else {
            b[i] = v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn csv_reader_never_panics(text in "[a-z0-9,.\\-\"\\n eE+]{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", text.as_bytes());
        let _ = downhill::data::csv::load(&p, &Default::default());
        let _ = downhill::data::csv::read_table(&p, None, None, &Default::default());
        let _ = downhill::data::csv::read_table(&p, Some(true), Some(&["a".into(), "b".into(), "c".into()]), &Default::default());
        let _ = downhill::data::csv::load(&p, &downhill::data::csv::CsvOptions {
            header: Some(false),
            target: Some("0".into()),
            ..Default::default()
        });
    }

    #[test]
    fn csv_reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.csv", &bytes);
        let _ = downhill::data::csv::load(&p, &Default::default());
    }

    #[test]
    fn idx_reader_never_panics(
        dims in proptest::collection::vec(any::<u32>(), 0..4),
        ty in prop_oneof![Just(8u8), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..300),
        claimed in 0u8..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut v = vec![0, 0, ty, claimed];
        for d in &dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(&body);
        let p = write(dir.path(), "x-idx", &v);
        for want in 1..4 {
            let _ = downhill::data::idx::read_idx(&p, want);
        }
        let l = write(dir.path(), "l-idx", &v);
        let _ = downhill::data::idx::load_pair(&p, &l);
    }

    #[test]
    fn model_reader_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let (model, _, _) = valid_files();
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m.safetensors", mutate(model, &edits, cut));
        if let Ok(m) = downhill::io::load(&p) {
            prop_assert!(m.net.params().iter().all(|v| v.is_finite()));
        }
        let _ = downhill::io::load_params(&p, &mut downhill::io::load(&write(dir.path(), "ok.safetensors", model)).unwrap().net);
    }

    #[test]
    fn model_metadata_never_panics(
        inputs in any::<u64>(),
        outputs in any::<u64>(),
        names in 0usize..5,
    ) {
        let (model, _, _) = valid_files();
        let n = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
        let mut h: serde_json::Value = serde_json::from_slice(&model[8..8 + n]).unwrap();
        let mut meta: serde_json::Value =
            serde_json::from_str(h["__metadata__"]["downhill"].as_str().unwrap()).unwrap();
        meta["inputs"] = inputs.into();
        meta["layers"][0]["args"]["outputs"] = outputs.into();
        meta["class_names"] = (0..names).map(|i| i.to_string()).collect::<Vec<_>>().into();
        h["__metadata__"]["downhill"] = meta.to_string().into();
        let text = serde_json::to_vec(&h).unwrap();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(text);
        bytes.extend(&model[8 + n..]);
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m.safetensors", &bytes);
        let _ = downhill::io::load(&p);
    }

    #[test]
    fn checkpoint_reader_never_panics_and_training_refuses_bad_state(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
        step in 0usize..12,
        epoch in 0usize..4,
    ) {
        let (_, ck, log) = valid_files();
        let dir = tempfile::tempdir().unwrap();
        // The checkpoint's history is the log beside it.
        write(dir.path(), "metrics.jsonl", log);
        let p = write(dir.path(), "c.safetensors", mutate(ck, &edits, cut));
        if let Ok(mut loaded) = downhill::checkpoint::load(&p) {
            // Whatever state a file yields, training takes it or refuses it: no panic.
            loaded.state.step = step;
            loaded.state.epoch = epoch;
            loaded.state.order = (0..step * 3).map(|i| i % 5).collect();
            let mut net = downhill::Network::<f32>::with_zero_params(
                loaded.meta.inputs,
                loaded.meta.layers.clone(),
            )
            .unwrap();
            let x: Vec<f32> = (0..20 * loaded.meta.inputs).map(|i| (i % 7) as f32).collect();
            let k = net.outputs();
            let data = downhill::data::Dataset::classification(
                x,
                loaded.meta.inputs,
                (0..20).map(|i| (i % k.max(1)) as u32).collect(),
                k,
            );
            if let Ok(data) = data {
                let _ = downhill::train::train_with(
                    &mut net,
                    &data,
                    &downhill::optim::OptimizerConfig::default_for("sgd").unwrap(),
                    &Default::default(),
                    &downhill::train::TrainConfig { epochs: 3, batch_size: 4, ..Default::default() },
                    &mut rand::SeedableRng::seed_from_u64(0),
                    downhill::train::Extras { resume: Some(loaded.state), ..Default::default() },
                );
            }
        }
    }
}
