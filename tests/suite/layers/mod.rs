//! Layers: backpropagation against finite differences (`gradcheck`), the vision kernels against
//! PyTorch and finite differences (`kernels`) and their fast paths against their definitions
//! (`fast_paths`), buffer checks (`buffers`, `shared_checks`), networks with image layers
//! (`image_networks`, `pytorch_conv`: step for step with PyTorch), and convolutional networks
//! through the binary (`cli`, `cli_errors`).

mod buffers;
mod cli;
mod cli_errors;
mod fast_paths;
mod gradcheck;
mod image_networks;
mod kernels;
mod pytorch_conv;
mod shared_checks;
