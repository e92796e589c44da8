// workerstore.js — the list of workers, shared by every tab that shows or chooses one.
//
// Contract: store.workers is the latest list from GET /workers (by name); store.subscribe(fn)
// calls fn(workers) at once and after each change; store.refresh() reloads it and resolves when
// done. Bursts of refreshes (a save fires an event, a resync another) share one request.
// store.find(name) is the worker named so, or undefined. workerProblem(worker) is why a worker's
// file cannot run jobs (its code does not pass the server's check), or null.

import {request} from "./api.js";

// GET /workers gives `error`, why a file (put there by hand) is not a valid worker, or null.
export function workerProblem(worker) {
  return worker && typeof worker.error === "string" && worker.error ? worker.error : null;
}

export class WorkerStore {
  constructor() {
    this.workers = [];
    this.listeners = [];
    this.loading = null;
    this.again = false;
  }

  subscribe(fn) {
    this.listeners.push(fn);
    fn(this.workers);
  }

  find(name) {
    return this.workers.find((worker) => worker.name === name);
  }

  refresh() {
    if (this.loading) {
      this.again = true; // a change arrived during the request: load once more after it
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          const reply = await request("GET", "/workers");
          this.workers = reply.data.slice().sort((a, b) => a.name.localeCompare(b.name));
          for (const fn of this.listeners) fn(this.workers);
        } while (this.again);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** Follow the live feed: a worker saved or deleted anywhere reloads the list. */
  follow(live) {
    live.subscribe((message) => {
      if (message.type === "worker") this.refresh().catch(() => {});
    });
    live.onResync(() => this.refresh().catch(() => {}));
  }
}
