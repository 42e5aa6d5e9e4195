//! `downhill eval`: a saved model's figures on a data set, printed or as JSON.

use std::process::ExitCode;

use downhill::Error;
use downhill::metrics::Report;
use downhill::run;

use crate::cli::args::EvalArgs;
use crate::cli::{interrupted_note, write_stdout};

pub(in crate::cli) fn eval(a: &EvalArgs) -> Result<ExitCode, Error> {
    let e = run::evaluate(&a.model, &a.data)?;
    for line in e.notes.lines() {
        errln!("{line}");
    }
    if e.interrupted {
        interrupted_note(&a.model);
    }
    if a.json {
        write_stdout(&format!(
            "{}\n",
            serde_json::to_string(&e).expect("report serialises")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{} on {} ({} examples)",
        a.model.display(),
        e.data,
        e.examples
    );
    outln!("loss      {:.4}", e.loss);
    match &e.report {
        // A BCE model: the figures of its 0/1 decisions.
        Report::Regression(_) if e.decisions.macro_f1.is_some() => {
            let d = &e.decisions;
            if let Some(a) = e.accuracy {
                outln!("accuracy  {a:.4}");
            }
            if let Some(m) = d.macro_f1 {
                outln!("macro-F1  {m:.4}");
            }
            if let Some(a) = d.roc_auc {
                outln!("ROC-AUC   {a:.4}");
            } else if let Some(why) = &d.roc_auc_undefined {
                outln!("ROC-AUC   undefined ({why})");
            }
        }
        Report::Regression(r) => {
            outln!("RMSE      {:.4}", r.rmse);
            match &r.r2_undefined {
                Some(why) => outln!("R²        undefined ({why})"),
                None => outln!("R²        {:.4}", r.r2),
            }
        }
        Report::Classes(c) => print_classes(c, e.class_names.as_deref()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A classification's figures for people: accuracy, macro-F1, ROC-AUC, each class's precision,
/// recall and F1, and the confusion matrix (for at most `MAX_CONFUSION_CLASSES` classes).
fn print_classes(c: &downhill::metrics::ClassReport, class_names: Option<&[String]>) {
    outln!("accuracy  {:.4}", c.accuracy);
    outln!("macro-F1  {:.4}", c.macro_f1);
    if let Some(a) = c.roc_auc {
        outln!("ROC-AUC   {a:.4}");
    } else if c.confusion.len() == 2 {
        outln!("ROC-AUC   undefined ({})", downhill::run::ROC_AUC_UNDEFINED);
    }
    let k = c.confusion.len();
    let names: Vec<String> = class_names
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
    let w = names.iter().map(String::len).max().unwrap_or(1).max(5);
    outln!("\n{:>w$}  precision  recall      F1  support", "class");
    for (i, name) in names.iter().enumerate() {
        let support: usize = c.confusion[i].iter().sum();
        outln!(
            "{name:>w$}  {:>9.4}  {:>6.4}  {:>6.4}  {support:>7}",
            c.precision[i],
            c.recall[i],
            c.f1[i]
        );
    }
    if k > downhill::plot::MAX_CONFUSION_CLASSES {
        outln!(
            "\nconfusion matrix omitted: {k} classes (shown for at most {}; --json has it)",
            downhill::plot::MAX_CONFUSION_CLASSES
        );
        return;
    }
    outln!("\nconfusion matrix (rows: true class, columns: predicted)");
    let cw = c
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    out!("{:>w$}", "");
    for i in 0..k {
        out!(" {:>cw$}", i);
    }
    outln!();
    for (i, row) in c.confusion.iter().enumerate() {
        out!("{:>w$}", names[i]);
        for v in row {
            out!(" {v:>cw$}");
        }
        outln!();
    }
}
