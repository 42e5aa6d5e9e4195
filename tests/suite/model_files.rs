//! Model files: a round trip keeps the weights, the tensor names and the metadata; bad model
//! files (not safetensors, cut short, metadata that lies about the shapes, another
//! architecture, a missing file) are errors naming the file and the tensor; a plain float64
//! state_dict loads with `load_params`.

use crate::common::write;
use downhill::data::Normalization;
use downhill::io::{self, ModelMeta};
use downhill::{Activation, Init, Loss, Network, Rng};
use rand::SeedableRng;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn trained_net() -> (Network<f32>, ModelMeta) {
    let mut rng = Rng::seed_from_u64(3);
    let net = Network::<f32>::mlp(
        &[4, 5, 3],
        Activation::Tanh,
        0.1,
        Init::GlorotUniform,
        &mut rng,
    )
    .unwrap();
    let mut meta = ModelMeta::new(
        &net,
        Loss::CrossEntropy,
        downhill::data::Normalizer::identity(4),
    );
    meta.normalizer.kind = Normalization::Standardize;
    meta.class_names = Some(vec!["a".into(), "b".into(), "c".into()]);
    (net, meta)
}

#[test]
fn model_round_trip_keeps_weights_names_and_metadata() {
    let d = tmp();
    let (net, meta) = trained_net();
    let p = d.path().join("m.safetensors");
    io::save(&p, &net, &meta).unwrap();
    let m = io::load(&p).unwrap();
    assert_eq!(m.net.params(), net.params());
    assert_eq!(m.meta, meta);
    // Tensor names and shapes are those of nn.Sequential(Linear, Tanh, Dropout, Linear).
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("0.bias".into(), vec![5]),
            ("0.weight".into(), vec![5, 4]),
            ("3.bias".into(), vec![3]),
            ("3.weight".into(), vec![3, 5])
        ]
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn bad_model_files_are_named_errors() {
    let d = tmp();
    let (net, meta) = trained_net();
    let good = d.path().join("good.safetensors");
    io::save(&good, &net, &meta).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let p = write(d.path(), "text.safetensors", b"this is not a model");
    let e = io::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("text.safetensors") && e.contains("not a readable safetensors"),
        "{e}"
    );
    let p = write(d.path(), "cut.safetensors", &bytes[..bytes.len() - 10]);
    let e = io::load(&p).unwrap_err().to_string();
    assert!(e.contains("cut.safetensors"), "{e}");

    // Metadata claiming a wider first layer than the tensors hold.
    let mut lying = meta.clone();
    lying.inputs = 6;
    lying.layers[0] = downhill::Layer::Dense(downhill::layers::Dense {
        inputs: 6,
        outputs: 5,
    });
    lying.normalizer = downhill::data::Normalizer::identity(6);
    let p = d.path().join("lying.safetensors");
    std::fs::write(&p, io::to_bytes(&net, &lying).unwrap()).unwrap();
    let e = io::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("tensor 0.weight") && e.contains("[5, 4]") && e.contains("[5, 6]"),
        "{e}"
    );

    // --init into a different architecture: names the tensor and both shapes.
    let mut other = Network::<f32>::mlp(
        &[4, 7, 3],
        Activation::Tanh,
        0.0,
        Init::GlorotUniform,
        &mut Rng::seed_from_u64(0),
    )
    .unwrap();
    let e = io::load_params(&good, &mut other).unwrap_err().to_string();
    assert!(
        e.contains("good.safetensors") && e.contains("0.weight") && e.contains("[7, 4]"),
        "{e}"
    );
    let e = io::load(&d.path().join("missing.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
}

/// A state_dict saved by PyTorch as float64 (safetensors.torch.save_file of a .double() model)
/// loads into the matching network; written here with the safetensors crate in the same layout.
#[test]
fn load_params_accepts_a_plain_f64_state_dict() {
    let d = tmp();
    let w: Vec<f64> = (0..8).map(|i| i as f64 * 0.5).collect();
    let b = vec![1.0f64, -1.0];
    let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (wb, bb) = (bytes(&w), bytes(&b));
    let views = vec![
        (
            "0.weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2, 4], &wb).unwrap(),
        ),
        (
            "0.bias",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2], &bb).unwrap(),
        ),
    ];
    let p = d.path().join("torch.safetensors");
    std::fs::write(&p, safetensors::serialize(views, None).unwrap()).unwrap();
    let mut net = Network::<f32>::mlp(
        &[4, 2],
        Activation::Relu,
        0.0,
        Init::HeNormal,
        &mut Rng::seed_from_u64(0),
    )
    .unwrap();
    io::load_params(&p, &mut net).unwrap();
    assert_eq!(
        net.params(),
        &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 1.0, -1.0]
    );
    // Without the architecture in its metadata, `load` says what to do instead.
    let e = io::load(&p).unwrap_err().to_string();
    assert!(e.contains("--init"), "{e}");
}
