// The last trained model, kept in the browser's IndexedDB so it survives reloads (and a lost device).
import type { ModelFiles, PresetName } from './protocol.ts';

export interface SavedModel {
  preset: PresetName;
  step: number;
  savedAt: string;
  summary: string;
  files: ModelFiles;
}

const DB = 'wgsl-train-demo';
const STORE = 'models';
const KEY = 'last';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

export function saveModel(m: SavedModel): Promise<unknown> {
  return tx('readwrite', (s) => s.put(m, KEY));
}

export async function loadModel(): Promise<SavedModel | null> {
  return ((await tx('readonly', (s) => s.get(KEY))) as SavedModel | undefined) ?? null;
}

export function clearModel(): Promise<unknown> {
  return tx('readwrite', (s) => s.delete(KEY));
}
