// main.js — the composition root of the admin page: builds its parts and wires them together.
//
// Contract: loaded once by index.html as a module, after the vendored CodeMirror scripts. The
// other modules only define things; this one creates the tabs, the live feed, the worker
// store and the tabs' controllers, asks GET /session who is signed in (the role decides which
// tabs and buttons show: roles.js), then routes the address's hash (#jobs, #jobs/ID,
// #create-job, #create-job/WORKER, #workers, #create-worker, #account, #users, #audit,
// #schedules, #webhooks) to a
// tab, and starts the clock that keeps running durations current.

import {AccountTab} from "./account.js";
import {signOut, whoAmI} from "./api.js";
import {AuditTab} from "./audit.js";
import {$} from "./dom.js";
import {CreateJobTab} from "./createjob.js";
import {CreateWorkerTab} from "./createworker.js";
import {LiveEvents} from "./events.js";
import {JobDetail} from "./jobdetail.js";
import {JobsList} from "./jobs.js";
import {allows, setRole} from "./roles.js";
import {SchedulesTab} from "./schedules.js";
import {Tabs} from "./tabs.js";
import {UsersTab} from "./users.js";
import {WebhooksTab} from "./webhooks.js";
import {WorkerStore} from "./workerstore.js";
import {WorkersTab} from "./workers.js";

const CONNECTION_TEXT = {connecting: "Connecting…", live: "Live",
  offline: "Offline — reconnecting…",
  refused: "Refused: this origin is not allowed; see --allowed-origins"};

function showConnection(state, detail) {
  const indicator = $("#connection");
  indicator.dataset.state = state;
  $("#connection-text").textContent = CONNECTION_TEXT[state];
  indicator.title = detail; // the server's own words: the origin, the host, what to change
}

function showAccount(me) {
  const name = $("#account-name");
  name.textContent = `${me.username} (${me.role})`;
  // A long name is cut short in the header (app.css): the title holds all of it.
  name.title = `${me.username} (${me.role}): your password and API tokens`;
  // Signing out ends a session; Basic credentials stay with the browser until it closes.
  const button = $("#sign-out");
  button.hidden = me.scheme !== "session";
  button.addEventListener("click", () => signOut().catch(() => {}));
}

function main() {
  const live = new LiveEvents();
  live.onState(showConnection);
  const workers = new WorkerStore();
  workers.follow(live);

  let tabs = null;
  const setHash = (hash) => history.replaceState(null, "", `#${hash}`);
  const detail = new JobDetail($("#job-detail"), {
    onOpened: (job) => { if (tabs.current === "jobs") setHash(`jobs/${job.id}`); },
    onClosed: () => {
      jobs.unselect();
      if (tabs.current === "jobs") setHash("jobs");
    },
    onRerun: (job) => {
      tabs.show("create-job");
      createJob.rerun(job);
      $("#create-job-submit").focus();
    },
  });
  const jobs = new JobsList({live, workers, detail});
  workers.subscribe((list) => detail.code.workersChanged(list)); // a diff with today's file
  const createWorker = new CreateWorkerTab({workers});
  const openJob = (id) => {
    tabs.show("jobs");
    jobs.open(id);
  };
  const createJob = new CreateJobTab({workers, onCreated: (job) => openJob(job.id)});
  const runWorker = (name) => {
    tabs.show("create-job");
    createJob.choose(name);
    $("#create-job-worker").focus();
  };
  const workersTab = new WorkersTab({workers, onRun: runWorker});
  const account = new AccountTab();
  const users = new UsersTab();
  const audit = new AuditTab();
  const schedules = new SchedulesTab({workers});
  const webhooks = new WebhooksTab();

  const shown = {
    jobs: () => {
      detail.log.refresh();
      detail.response.refresh();
      setHash(detail.jobId ? `jobs/${detail.jobId}` : "jobs");
    },
    "create-job": () => setHash("create-job"),
    workers: () => { workersTab.shown(); setHash("workers"); },
    "create-worker": () => { createWorker.shown(); setHash("create-worker"); },
    account: () => { account.shown(); setHash("account"); },
    users: () => { users.shown(); setHash("users"); },
    audit: () => { audit.shown(); setHash("audit"); },
    schedules: () => { schedules.shown(); setHash("schedules"); },
    webhooks: () => { webhooks.shown(); setHash("webhooks"); },
  };
  tabs = new Tabs($("#tablist"), {onShow: (name) => shown[name](),
    isAvailable: (tab) => allows(tab.dataset.needs)});

  const route = () => {
    const [name, id] = location.hash.replace(/^#/, "").split("/");
    if (name === "jobs" && id) openJob(decodeURIComponent(id));
    else if (name === "create-job" && id && tabs.has(name)) runWorker(decodeURIComponent(id));
    else tabs.show(tabs.has(name) ? name : "jobs");
  };
  // The role decides which tabs exist, so routing waits for it. whoAmI() also fetches the
  // XSRF token the page's commands carry.
  whoAmI().then((me) => {
    setRole(me.role);
    showAccount(me);
    users.start(me);
    account.start(me);
    window.addEventListener("hashchange", route);
    route();
  }).catch(() => {}); // a 401 has already sent the page to the sign-in form

  workers.refresh().catch(() => {}); // the feed's first open reloads both lists again
  jobs.load();
  live.start();
  setInterval(() => {
    jobs.tick();
    detail.tick();
  }, 1000);
}

main();
