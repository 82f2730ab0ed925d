//! The seed's GradientTape example: `x = 3; y = x * x; z = y * y`, then dy/dx, dz/dx and dz/dy.
//! `cargo run --release --example gradient_tape` prints 6, 108 and 18 (and fails otherwise).

use mathblocks::autograd::{Tape, TapeError};
use mathblocks::tensor::Tensor;

fn main() -> Result<(), TapeError> {
    let tape = Tape::persistent(); // several gradient queries, as `persistent=True`
    let x = tape.watch(3.0);
    let y = x.mul(&x)?;
    let z = y.mul(&y)?;
    let dy_dx = tape.gradient(&y, &x)?.item()?;
    let dz_dx = tape.gradient(&z, &x)?.item()?;
    let dz_dy = tape.gradient(&z, &y)?.item()?;
    println!("dy/dx = {dy_dx}   (2x)");
    println!("dz/dx = {dz_dx}   (4x^3)");
    println!("dz/dy = {dz_dy}   (2y)");
    assert_eq!((dy_dx, dz_dx, dz_dy), (6.0, 108.0, 18.0));

    // The chapter's next step: the gradient of a loss with respect to weights.
    let tape = Tape::new();
    let w = tape.watch(Tensor::new(&[2, 2], vec![0.5, -0.5, 0.25, 1.0])?);
    let b = tape.watch(Tensor::zeros(&[2]));
    let input = tape.constant(Tensor::new(&[1, 2], vec![1.0, 2.0])?);
    let loss = input.matmul(&w)?.add(&b)?.softmax_cross_entropy(&[1])?;
    println!("loss = {:.4}", loss.value().item()?);
    println!("d(loss)/dW =\n{:.4}", tape.gradient(&loss, &w)?);
    Ok(())
}
