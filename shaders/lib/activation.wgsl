// Activation functions, shared by activation.wgsl and the matmul epilogue (included, no bindings here).
// ACT selects one: 0 none, 1 relu, 2 gelu (tanh approximation, GPT-2's gelu_new), 3 silu, 4 tanh, 5 sigmoid.
// act_grad(s) is f'(x) written in terms of the saved value s: the OUTPUT y for relu, tanh and sigmoid,
// the INPUT x for gelu and silu (act_saves_input() says which one the backward pass must keep).
// gelu uses the identity 0.5·(1 + tanh(z)) = sigmoid(2z), so gelu(x) = x·σ(2z) and
// gelu'(x) = σ(2z)·(1 + 2x·σ(−2z)·z'(x)); silu'(x) = σ(x)·(1 + x·σ(−x)). The textbook forms compute
// 1 + t, 1 − t² or 1 − σ from t ≈ ±1 or σ ≈ 1 and cancel catastrophically in f32 (gelu' off by up to
// 5e-6 absolute near |x| = 5, 100% relative for x < −4); sigmoid2() gets both σ(x) and σ(−x) from one
// exp without a subtraction.
const ACT: u32 = {{ACT}}u;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)

// tanh saturates to ±1 in f32 beyond |x| = 10; clamping keeps exp() in range on every driver.
fn safe_tanh(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0))); }
// (σ(x), σ(−x)) = (1, e) / (1 + e) with e = exp(−x): both to a few ulp (1 − σ(x) would not be).
fn sigmoid2(x: f32) -> vec2f {
  let e = exp(-clamp(x, -80.0, 80.0));
  let g = 1.0 / (1.0 + e);
  return vec2f(g, e * g);
}

fn act_forward(x: f32) -> f32 {
  if (ACT == 1u) { return max(x, 0.0); }
  if (ACT == 2u) { return x * sigmoid(2.0 * GELU_C * (x + 0.044715 * x * x * x)); }
  if (ACT == 3u) { return x * sigmoid(x); }
  if (ACT == 4u) { return safe_tanh(x); }
  if (ACT == 5u) { return sigmoid(x); }
  return x;
}

fn act_grad(s: f32) -> f32 {
  if (ACT == 1u) { return select(0.0, 1.0, s > 0.0); }          // s = y
  if (ACT == 2u) {                                               // s = x
    // gelu' is 1 (x > 20) or 0 (x < -20) to f32 precision; the clamp keeps u³ and u² finite for huge |x|.
    let u = clamp(s, -20.0, 20.0);
    let g = sigmoid2(2.0 * GELU_C * (u + 0.044715 * u * u * u));
    return g.x * (1.0 + 2.0 * u * g.y * GELU_C * (1.0 + 3.0 * 0.044715 * u * u));
  }
  if (ACT == 3u) {                                               // s = x
    let u = clamp(s, -80.0, 80.0);   // silu' is 1 or 0 to f32 precision beyond; keeps u·σ(−u) finite
    let g = sigmoid2(u);
    return g.x * (1.0 + u * g.y);
  }
  if (ACT == 4u) { return 1.0 - s * s; }                         // s = y
  if (ACT == 5u) { return s * (1.0 - s); }                       // s = y
  return 1.0;
}
