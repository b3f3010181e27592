// The scale of a loss kernel's gradient, shared by cross_entropy.wgsl, cross_entropy_chunked.wgsl and
// mse.wgsl (whose `params` has a `grad_scale` field: 1 / the elements the mean is over). With LOSS_SCALE
// (mixed precision) it is also multiplied by the dynamic loss scale status[5] (see grad_norm.wgsl), bound
// at binding 5 after the kernel's own four.
#if {{LOSS_SCALE}}
@group(0) @binding(5) var<storage, read> status: array<f32>;
fn grad_scale() -> f32 { return params.grad_scale * status[5]; }
#else
fn grad_scale() -> f32 { return params.grad_scale; }
#endif
