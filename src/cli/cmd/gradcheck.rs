//! `downhill gradcheck`: analytic gradients against finite differences, and the report.

use std::process::ExitCode;

use downhill::settings::Settings;
use downhill::{Error, Init, Loss};

use crate::cli::args::GradcheckArgs;

pub(in crate::cli) fn gradcheck(a: &GradcheckArgs) -> Result<ExitCode, Error> {
    if !(a.tol > 0.0 && a.tol.is_finite()) {
        return Err(Error::setting(
            "--tol",
            a.tol,
            "the largest acceptable relative error must be a finite number > 0",
        ));
    }
    let spec = gradcheck_spec(a)?;
    let r = downhill::gradcheck::random_with(&spec, &mut gradcheck_estimate())?;
    // A central difference (L(w+h) − L(w−h)) / 2h carries L's rounding, |L|·ε, over h: at a
    // loss of 10⁷ that is ~10⁻⁴ of error in every entry whatever backpropagation computed.
    let noise = r.loss.abs() * f64::EPSILON / 1e-5;
    if r.max_rel_error > a.tol && noise > 1e-4 * a.tol {
        // A failure that rounding alone can explain for small entries: say so.
        errln!(
            "note: at a loss of {:.3e} rounding alone puts ~{noise:.1e} of error in every finite \
             difference (h = 1e-5), so entries with a gradient below ~{:.1e} cannot pass the \
             tolerance {}, whatever backpropagation computed",
            r.loss,
            noise / a.tol,
            a.tol
        );
    } else if noise > 1e-4 {
        errln!(
            "note: the loss is {:.3e}; at that size the finite differences (h = 1e-5) carry \
             errors of ~{noise:.1e} from rounding alone, so a large error here says nothing \
             about backpropagation (check with a smaller --l2 or network)",
            r.loss
        );
    }
    let ok = r.max_rel_error <= a.tol;
    if a.json {
        let mut v = serde_json::to_value(&r).expect("report serialises");
        v["passed"] = ok.into();
        v["tolerance"] = a.tol.into();
        outln!("{v}");
    } else {
        print_gradcheck(&spec, &r, a.tol);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Seconds of a gradient check beyond which it says, once, how long it will take.
const GRADCHECK_SAY_AFTER: f64 = 2.0;

/// The progress of a gradient check: once it has run [`GRADCHECK_SAY_AFTER`] seconds, a line
/// on stderr with the number of loss evaluations (two per parameter) and the time they will
/// take at the rate so far.
fn gradcheck_estimate() -> impl FnMut(usize, usize) {
    let started = std::time::Instant::now();
    let mut said = false;
    move |done, total| {
        let secs = started.elapsed().as_secs_f64();
        if !said && secs > GRADCHECK_SAY_AFTER {
            said = true;
            errln!(
                "gradcheck: {total} loss evaluations (two per parameter), {done} done in {secs:.1} \
                 s: about {:.0} s in all here (a smaller network or --batch is faster)",
                secs / done as f64 * total as f64
            );
        }
    }
}

/// The random network and batch `gradcheck` checks: by default a tanh network 5-4, else the
/// network flags' (with an image shape, the inputs are its values).
fn gradcheck_spec(a: &GradcheckArgs) -> Result<downhill::gradcheck::RandomCheck, Error> {
    // The dense network's flags beside --layers or a conv --net are refused, as by `train`.
    let mut given = Settings::default();
    a.net.apply(&mut given);
    given.check_network_source()?;
    let mut s = Settings {
        hidden: vec![5, 4],
        activation: downhill::Activation::Tanh,
        ..Settings::default()
    };
    a.net.apply(&mut s);
    let inputs = match &s.image_shape {
        Some(t) => {
            let len = downhill::netspec::parse_image_shape(t)?.len();
            if let Some(n) = a.inputs.filter(|&n| n != len) {
                return Err(Error::setting(
                    "--inputs",
                    n,
                    format!("--image-shape {t} holds {len} values per example"),
                ));
            }
            len
        }
        None => a.inputs.unwrap_or(6),
    };
    Ok(downhill::gradcheck::RandomCheck {
        inputs,
        hidden: s.hidden.clone(),
        outputs: a.outputs,
        activation: s.activation,
        dropout: s.dropout,
        init: s.init_scheme.unwrap_or(Init::default_for(s.activation)),
        loss: s.loss.unwrap_or(Loss::CrossEntropy),
        l2: s.l2,
        batch: a.batch,
        seed: s.seed,
        layers: s.layers.clone(),
        net: s.net.clone(),
        image: s.image_shape.clone(),
    })
}

/// The gradient check for people: what was checked, each tensor's worst errors, the verdict
/// against `tol`.
fn print_gradcheck(
    spec: &downhill::gradcheck::RandomCheck,
    r: &downhill::gradcheck::GradcheckReport,
    tol: f64,
) {
    if let Some(l) = spec.layers.as_ref().or(spec.net.as_ref()) {
        outln!(
            "gradient check: network \"{l}\" on {} inputs{}, {} loss, batch {}, h = 1e-5, f64, training mode",
            spec.inputs,
            spec.image
                .as_ref()
                .map_or(String::new(), |s| format!(" ({s})")),
            spec.loss.name(),
            spec.batch
        );
    } else {
        outln!(
            "gradient check: {} network {}-{}-{} ({}), {} loss, batch {}, h = 1e-5, f64",
            if spec.dropout > 0.0 {
                "dropout"
            } else {
                "plain"
            },
            spec.inputs,
            spec.hidden
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            spec.outputs,
            spec.activation.name(),
            spec.loss.name(),
            spec.batch
        );
    }
    outln!(
        "{:<12} {:>10} {:>16} {:>16}",
        "tensor",
        "shape",
        "max rel error",
        "max abs error"
    );
    for t in &r.tensors {
        outln!(
            "{:<12} {:>10} {:>16.3e} {:>16.3e}",
            t.name,
            format!("{:?}", t.shape),
            t.max_rel_error,
            t.max_abs_error
        );
    }
    if r.kinks > 0 {
        outln!(
            "{} parameter(s) left out: their differences ±h straddle a ReLU or max-pooling kink \
             (the one-sided differences disagree and the backpropagated gradient matches one side)",
            r.kinks
        );
    }
    let ok = r.max_rel_error <= tol;
    outln!(
        "{}: max relative error {:.3e} (tolerance {:.0e})",
        if ok { "PASS" } else { "FAIL" },
        r.max_rel_error,
        tol
    );
}
