// tabs.js — the page's sections as an ARIA tablist: one tab selected, its panel shown.
//
// Contract: new Tabs(tablist, {onShow, isAvailable}) wires the role="tab" buttons inside
// `tablist` to the panels their aria-controls name; each tab's data-tab is its name (jobs,
// create-job, workers, create-worker, schedules, account, users, audit). Click, Enter or Space selects;
// Left/Right, Home and End move between tabs and select (automatic activation, as in the
// WAI-ARIA tabs pattern); only the selected tab is in the Tab order (roving tabindex), so Tab
// goes on into the panel. show(name) selects from code and calls onShow(name) so a panel can
// refresh what it measures (editors) when it appears. Tabs that isAvailable(tab) refuses (the
// role does not reach them) are skipped by the keyboard, by has() and by show().

export class Tabs {
  constructor(tablist, {onShow = () => {}, isAvailable = () => true} = {}) {
    this.allTabs = [...tablist.querySelectorAll('[role="tab"]')];
    this.onShow = onShow;
    this.isAvailable = isAvailable;
    this.current = null;
    for (const tab of this.allTabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.tab));
      tab.addEventListener("keydown", (event) => this.onKey(event, tab));
    }
  }

  /** The tabs the user may open, in page order. */
  get tabs() {
    return this.allTabs.filter((tab) => this.isAvailable(tab));
  }

  has(name) {
    return this.tabs.some((tab) => tab.dataset.tab === name);
  }

  show(name, {focus = false} = {}) {
    const chosen = this.tabs.find((tab) => tab.dataset.tab === name) || this.tabs[0];
    for (const tab of this.allTabs) {
      const selected = tab === chosen;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) chosen.focus();
    if (this.current !== chosen.dataset.tab) {
      this.current = chosen.dataset.tab;
      this.onShow(this.current);
    }
  }

  onKey(event, tab) {
    const index = this.tabs.indexOf(tab);
    const last = this.tabs.length - 1;
    const target = {ArrowRight: index === last ? 0 : index + 1,
      ArrowLeft: index === 0 ? last : index - 1, Home: 0, End: last}[event.key];
    if (target === undefined) return;
    event.preventDefault();
    this.show(this.tabs[target].dataset.tab, {focus: true});
  }
}
