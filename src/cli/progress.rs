//! What a person sees while training: a progress bar per epoch on a terminal, one line per epoch
//! always (on stderr, so stdout stays clean for `--json`), nothing with `--quiet`.

use std::io::IsTerminal;

use downhill::train::{EpochMetrics, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
    batch: usize,
    started: std::time::Instant,
    /// The last step seen: (epoch index, steps done in it, steps per epoch).
    pub last_step: Option<(usize, usize, usize)>,
}

impl Progress {
    pub fn new(quiet: bool, epochs: usize, batch: usize) -> Self {
        Progress {
            quiet,
            bar: None,
            epochs,
            batch,
            started: std::time::Instant::now(),
            last_step: None,
        }
    }
}

impl Observer for Progress {
    fn on_start(&mut self, epochs: usize, _steps_per_epoch: usize) {
        self.epochs = epochs;
    }

    fn should_stop(&mut self) -> bool {
        super::interrupt::requested()
    }

    fn stop_at_once(&mut self, on: bool, leave: &[std::path::PathBuf]) {
        super::interrupt::stop_at_once(on, leave);
    }

    fn on_data(&mut self, report: &[String]) {
        if !self.quiet {
            for line in report {
                super::errln!("{line}");
            }
        }
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        self.last_step = Some((epoch, step + 1, steps));
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        if step == 0 {
            let bar = ProgressBar::with_draw_target(
                Some(steps as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
            self.bar = Some(bar);
            self.started = std::time::Instant::now();
        }
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64 + 1);
            if step.is_multiple_of(8) || step + 1 == steps {
                let rate = ((step + 1) * self.batch) as f64
                    / self.started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("loss {loss:.4}  {rate:.0} ex/s"));
            }
        }
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let mut line = format!(
            "epoch {:>3}/{}  train loss {:.4}",
            m.epoch, self.epochs, m.train_loss
        );
        if let Some(a) = m.train_accuracy {
            line += &format!(" acc {:.4}", a);
        }
        if let Some(l) = m.val_loss {
            line += &format!("  val loss {l:.4}");
        }
        if let Some(a) = m.val_accuracy {
            line += &format!(" acc {a:.4}");
        }
        if let Some(g) = m.grad_norm {
            line += &format!("  ‖∇L‖ {g:.2e}");
        }
        line += &format!(
            "  lr {:.4}  {:.2}s  {:.0} ex/s",
            m.lr, m.seconds, m.examples_per_second
        );
        super::errln!("{line}");
    }
}
