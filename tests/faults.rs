//! Faults during training: a kill in the middle of a checkpoint write, Ctrl-C, and a loss that
//! blows up. Each must leave a whole checkpoint (the old one or the new one) or none.

use mathblocks::nn::{Act, Dense, Loss, Sequential, checkpoint};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("mathblocks"));
    c.env("RAYON_NUM_THREADS", "2")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Iris with two hidden layers of 1024: each epoch writes a 4 MB checkpoint, so a kill at a
/// random moment often lands inside a write.
fn endless_iris(save: &Path) -> Child {
    bin()
        .args([
            "train",
            "--dataset",
            "iris",
            "--hidden",
            "1024,1024",
            "--epochs",
            "1000000",
        ])
        .arg("--save")
        .arg(save)
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path, child: &mut Child) {
    let t = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "trainer exited early");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Size of the checkpoint `endless_iris` writes.
fn checkpoint_len() -> u64 {
    let m = Sequential::new(
        4,
        &[
            Dense::new(1024, Act::Relu),
            Dense::new(1024, Act::Relu),
            Dense::new(3, Act::Softmax),
        ],
        Loss::SparseCategoricalCrossentropy,
        0,
    )
    .unwrap();
    checkpoint::to_bytes(&m).len() as u64
}

#[test]
fn killed_mid_save_leaves_a_whole_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let full = checkpoint_len();
    // One whole checkpoint first, for the kills below to threaten.
    let mut first = endless_iris(&path);
    wait_for(&path, &mut first);
    signal(&first, "-KILL");
    first.wait().unwrap();
    for round in 0..6 {
        let mut child = endless_iris(&path);
        // Watch the folder and kill the trainer the moment any file in it is partly written:
        // the temporary file being filled, or (if writes were not atomic) the checkpoint.
        let t = Instant::now();
        let caught = loop {
            assert!(child.try_wait().unwrap().is_none(), "trainer exited early");
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no write seen in 60 s"
            );
            let partial = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok()?.metadata().ok())
                .find(|m| m.len() < full);
            if let Some(m) = partial {
                signal(&child, "-KILL");
                break m.len();
            }
        };
        child.wait().unwrap();
        assert!(caught < full);
        // Whatever moment the kill hit, the file is a complete checkpoint of the right model.
        let m = checkpoint::load(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!((m.input_dim(), m.output_dim(), m.layers().len()), (4, 3, 3));
    }
    // A kill between creating the temporary file and renaming it leaves the temporary (named
    // after the killed process), never anything else.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "w.safetensors"
                || (name.starts_with(".w.safetensors.") && name.ends_with(".tmp")),
            "unexpected file {name}"
        );
    }
}

#[test]
fn ctrl_c_keeps_the_last_completed_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut child = endless_iris(&path);
    wait_for(&path, &mut child);
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("holds the weights of epoch") && !err.contains("panicked"),
        "{err}"
    );
    checkpoint::load(&path).unwrap();
}

#[test]
fn exploding_loss_leaves_the_previous_checkpoint_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let ok = bin()
        .args(["train", "--dataset", "iris", "--epochs", "3", "--save"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let before = std::fs::read(&path).unwrap();
    let out = bin()
        .args([
            "train",
            "--dataset",
            "iris",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--save",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("at epoch 1, step")
            && err.contains("learning rate")
            && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the old checkpoint was changed"
    );
}
