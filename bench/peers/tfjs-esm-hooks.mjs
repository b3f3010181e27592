// Node module-resolution hook (installed with module.register) that lets Node
// load tfjs-core's per-file ESM build (dist/**/*.js), whose relative imports
// omit the '.js' extension (they target bundlers). Used only to load
// '@tensorflow/tfjs-core/dist/register_all_gradients.js': the Node bundle of
// tfjs-core ships no gradients (the @tensorflow/tfjs union package inlines
// them). Gradients register into tfjs's global (globalThis) registry and run
// on the shared global engine, so they serve the CommonJS tfjs-core instance.
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if ((specifier.startsWith('./') || specifier.startsWith('../')) &&
      parent.includes('/@tensorflow/tfjs-core/dist/') && !/\.[cm]?js$/.test(specifier)) {
    try {
      return await nextResolve(specifier + '.js', context);
    } catch {
      return nextResolve(specifier + '/index.js', context);
    }
  }
  return nextResolve(specifier, context);
}
