//! The `mathblocks` command line: train the seed network (or iris), evaluate and predict
//! with saved weights. Every bad input ends in one `error: ...` line and exit status 1
//! (2 for malformed flags, from clap); Ctrl-C during `train` exits 130 after saving the last
//! completed epoch's weights when `--save` is given.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mathblocks::data::{Dataset, iris, mnist};
use mathblocks::nn::{
    Act, Dense, EpochLog, FitConfig, Loss, Optimizer, Sequential, TrainError, checkpoint,
};
use mathblocks::rng::Rng;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "mathblocks",
    version,
    about = "Train and run small dense networks (MNIST, iris) on fast CPU kernels"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model (default: the seed network, Dense 512 relu -> Dense 10 softmax, RMSprop,
    /// 5 epochs of batch 128 on data/mnist), then evaluate it on the test set.
    Train(TrainArgs),
    /// Loss and accuracy of saved weights on a test set.
    Evaluate(EvalArgs),
    /// Predicted class and probability of test examples.
    Predict(PredictArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DatasetKind {
    Mnist,
    Iris,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OptKind {
    Sgd,
    Momentum,
    Rmsprop,
    Adam,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Which data set: an MNIST-layout IDX folder, or TensorFlow's iris CSV.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetKind,
    /// Folder of the four MNIST-layout IDX files (plain or .gz), or the iris CSV file.
    /// Default: data/mnist or data/iris/iris.csv.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads for the kernels (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Hidden layer widths, comma-separated (default: 512 for MNIST, 10,10 for iris).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    hidden: Option<Vec<u64>>,
    /// Optimiser (default: rmsprop for MNIST, adam for iris).
    #[arg(long, value_enum)]
    optimizer: Option<OptKind>,
    /// Learning rate (default: Keras's for the optimiser; 0.01 for iris).
    #[arg(long, allow_negative_numbers = true, value_parser = positive_f32)]
    lr: Option<f32>,
    /// Passes over the training data (default: 5 for MNIST, 300 for iris).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    epochs: Option<u64>,
    /// Examples per step (default: 128 for MNIST, 16 for iris).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: Option<u64>,
    /// Fraction of the training data (its tail, as Keras) held out for validation, in [0, 1).
    #[arg(long, default_value = "0", value_parser = split_fraction)]
    validation_split: f64,
    /// Seed for weight initialisation and shuffling.
    #[arg(long, default_value = "0")]
    seed: u64,
    /// Write the trained weights here (.safetensors), atomically, after every epoch.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Write the history and test metrics here as JSON.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Weights written by `train --save`.
    #[arg(long)]
    model: PathBuf,
}

#[derive(Args)]
struct PredictArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Weights written by `train --save`.
    #[arg(long)]
    model: PathBuf,
    /// Test example(s): an index `N` or a range `A..B`.
    #[arg(long, default_value = "0..10", value_parser = index_range)]
    index: (usize, usize),
}

fn positive_f32(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive finite number, got {s}"))
    }
}

fn split_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be in [0, 1), got {s}"))
    }
}

fn index_range(s: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("{t:?} is not an index"))
    };
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let a = parse(s)?;
            (a, a + 1)
        }
    };
    if a < b {
        Ok((a, b))
    } else {
        Err(format!("empty range {s}"))
    }
}

/// Train and test sets of the chosen data set.
struct Loaded {
    train: Dataset,
    test: Dataset,
    class_names: Vec<String>,
}

fn load(args: &DataArgs) -> Result<Loaded, String> {
    match args.dataset {
        DatasetKind::Mnist => {
            let dir = args
                .data
                .clone()
                .unwrap_or_else(|| PathBuf::from("data/mnist"));
            let m = mnist::load(&dir).map_err(|e| format!("cannot load MNIST-layout data: {e}"))?;
            Ok(Loaded {
                train: m.train,
                test: m.test,
                class_names: (0..10).map(|d| d.to_string()).collect(),
            })
        }
        DatasetKind::Iris => {
            let file = args
                .data
                .clone()
                .unwrap_or_else(|| PathBuf::from("data/iris/iris.csv"));
            let (all, names) =
                iris::load(&file).map_err(|e| format!("cannot load iris data: {e}"))?;
            // A fixed split (seed 0): 80% train, the rest test (120/30 for the 150 flowers).
            let order = mathblocks::data::permutation(all.n, &mut Rng::new(0));
            let cut = all.n * 4 / 5;
            Ok(Loaded {
                train: all.select(&order[..cut]),
                test: all.select(&order[cut..]),
                class_names: names,
            })
        }
    }
}

fn set_threads(t: Option<u64>) -> Result<(), String> {
    if let Some(t) = t {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t as usize)
            .build_global()
            .map_err(|e| format!("cannot start {t} threads: {e}"))?;
    }
    Ok(())
}

fn epoch_line(log: &EpochLog, steps: usize, n: usize) -> String {
    let mut s = format!(
        "{steps}/{steps} - {:.2}s - {:.0} samples/s - loss: {:.4} - accuracy: {:.4}",
        log.seconds,
        n as f64 / log.seconds,
        log.loss,
        log.accuracy
    );
    if let (Some(l), Some(a)) = (log.val_loss, log.val_accuracy) {
        s += &format!(" - val_loss: {l:.4} - val_accuracy: {a:.4}");
    }
    s
}

fn train(a: TrainArgs) -> Result<ExitCode, String> {
    set_threads(a.data.threads)?;
    let data = load(&a.data)?;
    let iris = a.data.dataset == DatasetKind::Iris;
    let hidden = a
        .hidden
        .clone()
        .unwrap_or(if iris { vec![10, 10] } else { vec![512] });
    let mut layers: Vec<Dense> = hidden
        .iter()
        .map(|&u| Dense::new(u as usize, Act::Relu))
        .collect();
    layers.push(Dense::new(data.train.classes, Act::Softmax));
    let kind = a.optimizer.unwrap_or(if iris {
        OptKind::Adam
    } else {
        OptKind::Rmsprop
    });
    let mut opt = match kind {
        OptKind::Sgd => Optimizer::sgd(),
        OptKind::Momentum => Optimizer::momentum(),
        OptKind::Rmsprop => Optimizer::rmsprop(),
        OptKind::Adam => Optimizer::adam(),
    };
    if let Some(lr) = a.lr.or(if iris { Some(0.01) } else { None }) {
        opt = opt.with_lr(lr);
    }
    let cfg = FitConfig {
        epochs: a.epochs.unwrap_or(if iris { 300 } else { 5 }) as usize,
        batch_size: a.batch_size.unwrap_or(if iris { 16 } else { 128 }) as usize,
        seed: a.seed,
        shuffle: true,
    };
    let (train_set, val_set) = if a.validation_split > 0.0 {
        let (t, v) = data.train.split_tail(a.validation_split);
        (t, Some(v))
    } else {
        (data.train.clone(), None)
    };
    if train_set.n == 0 {
        return Err("no training examples left after the validation split".into());
    }
    let mut model = Sequential::new(
        train_set.features,
        &layers,
        Loss::SparseCategoricalCrossentropy,
        a.seed,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "mathblocks {} | isa {} | {} threads | {} train / {} test examples | layers {} | {:?} lr {}",
        env!("CARGO_PKG_VERSION"),
        mathblocks::kernels::isa().name(),
        rayon::current_num_threads(),
        train_set.n,
        data.test.n,
        layers
            .iter()
            .map(|l| format!("{}:{}", l.units, l.act.name()))
            .collect::<Vec<_>>()
            .join(","),
        kind_name(kind),
        opt.lr()
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C asks the loop to stop after the current step; the handler cannot fail the run.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let steps = train_set.n.div_ceil(cfg.batch_size.min(train_set.n));
    let quiet = iris;
    let bar: std::cell::RefCell<Option<ProgressBar>> = Default::default();
    let mut last_good: Option<Sequential> = None;
    let mut save_err: Option<String> = None;
    let t0 = Instant::now();
    let result = model.fit(
        &train_set,
        val_set.as_ref(),
        &cfg,
        opt,
        |p| {
            if !quiet {
                let mut slot = bar.borrow_mut();
                let b = slot.get_or_insert_with(|| {
                    println!("Epoch {}/{}", p.epoch, p.epochs);
                    let b = ProgressBar::new(p.steps as u64);
                    b.set_style(
                        ProgressStyle::with_template("{pos}/{len} [{bar:30}] {elapsed} {msg}")
                            .expect("static template")
                            .progress_chars("=> "),
                    );
                    b
                });
                b.set_position(p.step as u64);
                if p.step % 8 == 0 || p.step == p.steps {
                    b.set_message(format!("loss: {:.4} - accuracy: {:.4}", p.loss, p.accuracy));
                }
            }
            !stop.load(Ordering::SeqCst)
        },
        |m, log| {
            if let Some(b) = bar.borrow_mut().take() {
                b.finish_and_clear();
            }
            if !quiet {
                println!("{}", epoch_line(log, steps, train_set.n));
            }
            if let Some(path) = &a.save
                && let Err(e) = checkpoint::save(m, path)
            {
                save_err.get_or_insert(e.to_string());
            }
            last_good = Some(m.clone());
        },
    );
    let train_seconds = t0.elapsed().as_secs_f64();
    if let Some(b) = bar.borrow_mut().take() {
        b.finish_and_clear();
    }
    if let Some(e) = save_err {
        return Err(e);
    }
    let history = match result {
        Ok(h) => h,
        Err(TrainError::Interrupted { epoch }) => {
            match (&a.save, &last_good) {
                (Some(p), Some(_)) => eprintln!(
                    "interrupted during epoch {epoch}: {} holds the weights of epoch {}",
                    p.display(),
                    epoch - 1
                ),
                (Some(p), None) => eprintln!(
                    "interrupted during epoch 1: no epoch completed, {} not written",
                    p.display()
                ),
                _ => eprintln!("interrupted during epoch {epoch}"),
            }
            return Ok(ExitCode::from(130));
        }
        Err(e @ TrainError::NonFinite { .. }) => {
            if let Some(p) = &a.save {
                // Saved at the end of every epoch, so the file holds the last finite weights.
                match &last_good {
                    Some(_) => eprintln!(
                        "{} keeps the weights of the last completed epoch",
                        p.display()
                    ),
                    None => eprintln!("no epoch completed: {} not written", p.display()),
                }
            }
            return Err(e.to_string());
        }
        Err(e) => return Err(e.to_string()),
    };
    if iris {
        let last = history.last().expect("at least one epoch");
        println!(
            "{} epochs: {}",
            history.len(),
            epoch_line(last, steps, train_set.n)
        );
    }
    let (test_loss, test_accuracy) = model.evaluate(&data.test);
    println!("test_loss: {test_loss:.4} - test_accuracy: {test_accuracy:.4}");
    show_predictions(
        &model,
        &data.test,
        &data.class_names,
        0,
        10.min(data.test.n),
    );
    if let Some(path) = &a.metrics_json {
        let epochs: Vec<serde_json::Value> = history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                serde_json::json!({"epoch": i + 1, "loss": h.loss, "accuracy": h.accuracy,
                    "val_loss": h.val_loss, "val_accuracy": h.val_accuracy, "seconds": h.seconds})
            })
            .collect();
        let doc = serde_json::json!({
            "history": epochs,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "train_seconds": train_seconds,
            "config": {"dataset": if iris { "iris" } else { "mnist" }, "hidden": hidden, "optimizer": kind_name(kind),
                       "lr": opt.lr(), "epochs": cfg.epochs, "batch_size": cfg.batch_size, "seed": cfg.seed,
                       "validation_split": a.validation_split, "threads": rayon::current_num_threads(),
                       "isa": mathblocks::kernels::isa().name()},
        });
        mathblocks::atomic::write(
            path,
            serde_json::to_string_pretty(&doc)
                .expect("JSON of plain values")
                .as_bytes(),
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!(
        "test_loss={test_loss:.6} test_accuracy={test_accuracy:.6} train_seconds={train_seconds:.3}"
    );
    Ok(ExitCode::SUCCESS)
}

fn kind_name(k: OptKind) -> &'static str {
    match k {
        OptKind::Sgd => "sgd",
        OptKind::Momentum => "momentum",
        OptKind::Rmsprop => "rmsprop",
        OptKind::Adam => "adam",
    }
}

fn show_predictions(model: &Sequential, test: &Dataset, names: &[String], from: usize, to: usize) {
    let f = test.features;
    let probs = model.predict(&test.x[from * f..to * f], to - from);
    let c = model.output_dim();
    for (i, p) in probs.chunks(c).enumerate() {
        let best = p
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > p[b] { j } else { b });
        let name = |k: usize| names.get(k).cloned().unwrap_or_else(|| k.to_string());
        println!(
            "test[{}]: predicted {} (p = {:.4}), label {}",
            from + i,
            name(best),
            p[best],
            name(test.y[from + i] as usize)
        );
    }
}

fn load_model(path: &Path, test: &Dataset, dataset: DatasetKind) -> Result<Sequential, String> {
    let model = checkpoint::load(path).map_err(|e| e.to_string())?;
    if model.input_dim() != test.features {
        let hint = if dataset == DatasetKind::Mnist {
            " (for an iris model pass --dataset iris)"
        } else {
            ""
        };
        return Err(format!(
            "{} takes {} features per example, the data has {}{hint}",
            path.display(),
            model.input_dim(),
            test.features
        ));
    }
    if model.output_dim() < test.classes {
        return Err(format!(
            "{} outputs {} classes, the data has {}",
            path.display(),
            model.output_dim(),
            test.classes
        ));
    }
    Ok(model)
}

fn evaluate(a: EvalArgs) -> Result<ExitCode, String> {
    set_threads(a.data.threads)?;
    let data = load(&a.data)?;
    let model = load_model(&a.model, &data.test, a.data.dataset)?;
    let (loss, acc) = model.evaluate(&data.test);
    println!(
        "test_loss={loss:.6} test_accuracy={acc:.6} examples={}",
        data.test.n
    );
    Ok(ExitCode::SUCCESS)
}

fn predict(a: PredictArgs) -> Result<ExitCode, String> {
    set_threads(a.data.threads)?;
    let data = load(&a.data)?;
    let model = load_model(&a.model, &data.test, a.data.dataset)?;
    let (from, to) = a.index;
    if to > data.test.n {
        return Err(format!(
            "index {} is past the test set, which has {} examples (0..{})",
            to - 1,
            data.test.n,
            data.test.n
        ));
    }
    show_predictions(&model, &data.test, &data.class_names, from, to);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Evaluate(a) => evaluate(a),
        Cmd::Predict(a) => predict(a),
    };
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
