// The peers, by name: each entry loads its module only when called and returns an opened peer (see
// tfjs.mjs, jaxjs.mjs for matmul and the MLP step; tfjs-gpt.mjs, jaxjs-gpt.mjs for the GPT step).
export const PEERS = {
  'tfjs-webgpu': async () => (await import('./tfjs.mjs')).init('webgpu'),
  'tfjs-wasm': async () => (await import('./tfjs.mjs')).init('wasm'),
  'jax-js-webgpu': async () => (await import('./jaxjs.mjs')).init('webgpu'),
};

export const GPT_PEERS = {
  'tfjs-webgpu': async () => (await import('./tfjs-gpt.mjs')).initGpt('webgpu'),
  'tfjs-wasm': async () => (await import('./tfjs-gpt.mjs')).initGpt('wasm'),
  'jax-js-webgpu': async () => (await import('./jaxjs-gpt.mjs')).initGpt('webgpu'),
};
