// A stack of layers applied in order. A Linear directly followed by an activation layer is fused into
// one Linear with that activation in its matmul epilogue (same math, one kernel fewer each way).
import type { Graph, Layer, Tensor } from '../graph/graph.ts';
import { Linear } from './linear.ts';
import { ActivationLayer } from './activation.ts';

export class Sequential implements Layer {
  readonly layers: readonly Layer[];

  constructor(layers: Layer[]) {
    this.layers = layers;
  }

  /** The layers after fusion. */
  fused(): Layer[] {
    const out: Layer[] = [];
    for (const layer of this.layers) {
      const prev = out[out.length - 1];
      if (layer instanceof ActivationLayer && prev instanceof Linear && !prev.options.activation && !layer.name) {
        out[out.length - 1] = prev.withActivation(layer.kind);
      } else out.push(layer);
    }
    return out;
  }

  apply(g: Graph, x: Tensor): Tensor {
    return this.fused().reduce((t, layer) => layer.apply(g, t), x);
  }
}
