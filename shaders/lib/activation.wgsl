// Activation functions, shared by activation.wgsl and the matmul epilogue (included, no bindings here).
// ACT selects one: 0 none, 1 relu, 2 gelu (tanh approximation, GPT-2's gelu_new), 3 silu, 4 tanh, 5 sigmoid.
// act_grad(s) is f'(x) written in terms of the saved value s: the OUTPUT y for relu, tanh and sigmoid,
// the INPUT x for gelu and silu (act_saves_input() says which one the backward pass must keep).
// gelu uses the identity 0.5·(1 + tanh(z)) = sigmoid(2z), so gelu(x) = x·sigmoid(2z) and
// gelu'(x) = σ·(1 + 2x·(1 − σ)·z'(x)) with σ = sigmoid(2z): the textbook tanh form computes 1 + t and
// 1 − t² from t ≈ −1 and cancels catastrophically for x < −4 (gelu' off by up to 4e-6 absolute, 100%
// relative, in f32); the sigmoid form has no cancellation there.
const ACT: u32 = {{ACT}}u;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)

// tanh saturates to ±1 in f32 beyond |x| = 10; clamping keeps exp() in range on every driver.
fn safe_tanh(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0))); }

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
    let g = sigmoid(2.0 * GELU_C * (u + 0.044715 * u * u * u));
    return g * (1.0 + 2.0 * u * (1.0 - g) * GELU_C * (1.0 + 3.0 * 0.044715 * u * u));
  }
  if (ACT == 3u) { let g = sigmoid(s); return g * (1.0 + s * (1.0 - g)); } // s = x
  if (ACT == 4u) { return 1.0 - s * s; }                         // s = y
  if (ACT == 5u) { return s * (1.0 - s); }                       // s = y
  return 1.0;
}
