//! The seed's tensor slicing on MNIST: the shapes of `train_images`, a slice of images,
//! `train_images[:, 14:, 14:]`, the batches of 128, and an ASCII picture of one digit.
//! `cargo run --release --example slicing [-- MNIST_DIR]` (default: the shipped `data/mnist`).

use mathblocks::data::mnist;
use mathblocks::s;
use mathblocks::tensor::Tensor;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        PathBuf::from,
    );
    let m = mnist::load(&dir)?;
    let n = m.train.n;
    let labels = m.train.y.clone();
    let train_images = Tensor::from(m.train).into_shape(&[n, 28, 28])?;
    println!("train_images.ndim  = {}", train_images.ndim());
    println!("train_images.shape = {:?}", train_images.shape());
    println!("train_labels[4]    = {}", labels[4]);

    let digit = train_images.slice(&s![4])?;
    println!("\ntrain_images[4] ({:?}):", digit.shape());
    for row in digit.batches(1) {
        let line: String = row
            .data()
            .iter()
            .map(|&p| match p {
                p if p > 0.75 => '#',
                p if p > 0.4 => '+',
                p if p > 0.1 => '.',
                _ => ' ',
            })
            .collect();
        println!("  |{line}|");
    }

    let my_slice = train_images.slice(&s![10..100])?;
    println!(
        "\ntrain_images[10:100].shape       = {:?}",
        my_slice.shape()
    );
    let same = train_images.slice(&s![10..100, .., ..])?;
    println!("train_images[10:100, :, :].shape = {:?}", same.shape());
    let corner = train_images.slice(&s![.., 14.., 14..])?;
    println!("train_images[:, 14:, 14:].shape  = {:?}", corner.shape());
    let centre = train_images.slice(&s![.., 7..21, 7..21])?;
    println!("train_images[:, 7:-7, 7:-7].shape = {:?}", centre.shape());

    let batch = train_images.slice(&s![..128])?;
    let n_ = 3;
    let batch_n = train_images.slice(&s![128 * n_..128 * (n_ + 1)])?;
    println!("\nbatch = train_images[:128]: {:?}", batch.shape());
    println!(
        "batch n=3 = train_images[128 * 3:128 * 4]: {:?}",
        batch_n.shape()
    );
    let batches = train_images.batches(128);
    let count = batches.clone().count();
    let last = batches.last().map(|b| b.shape().to_vec());
    println!("{count} batches of up to 128; the last one has shape {last:?}");
    Ok(())
}
