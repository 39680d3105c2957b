/* global window, document, location, URLSearchParams, fetch, setInterval, clearInterval, setTimeout, sessionStorage */
// Stand-in for VS Code's webview API in the preview page (plain browser script, loaded before the
// dashboard bundle). Query parameters: theme=dark|light|high-contrast|high-contrast-light;
// live=<ms> replays the recorded events in batches every <ms> instead of all at once after `init`
// (the page folds them with the extension's reducer, as it folds a live federation's events);
// state is kept in sessionStorage so a reload behaves like VS Code restoring a panel.
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var theme = params.get('theme') || 'dark';
  var classes = { dark: ['vscode-dark'], light: ['vscode-light'], 'high-contrast': ['vscode-high-contrast'], 'high-contrast-light': ['vscode-high-contrast', 'vscode-high-contrast-light'] };
  document.body.className = (classes[theme] || classes.dark).join(' ');
  document.body.setAttribute('data-vscode-theme-kind', 'vscode-' + theme);
  var posted = [];
  window.__fedexPosted = posted;
  var live = params.has('live');
  // A federation before its first event: the shape of initialFederation() in src/extension/state/federationState.ts.
  var federation = {
    id: 'preview', kind: 'simulation', label: params.get('label') || 'recorded run', url: null, outDir: null, live: live, phase: live ? 'starting' : 'idle',
    method: null, totalRounds: null, runs: [], simulation: null, manualRounds: false, ready: null, clientId: null, notes: [], lastError: null,
    reportJson: null, reportHtml: null, eventCount: 0, startedAt: null, updatedAt: null,
  };
  var STATE_KEY = 'fedex-dashboard-state';

  function send(message) {
    window.postMessage(message, '*');
  }

  function parse(text) {
    return text.split('\n').filter(function (l) { return l.trim() !== ''; }).map(function (l) { return JSON.parse(l); });
  }

  function replay() {
    fetch('/events.jsonl').then(function (r) { return r.text(); }).then(function (text) {
      var events = parse(text);
      var every = Number(params.get('live'));
      // How the extension would know it: a simulation's, a joined client's or a host's stream.
      var first = events.length > 0 ? events[0].type : '';
      federation.kind = first === 'simulation_started' ? 'simulation' : first.indexOf('join_') === 0 ? 'join' : 'host';
      if (federation.kind === 'join') federation.phase = live ? 'connecting' : 'idle';
      send({ type: 'init', version: 2, federations: [federation], selected: null, theme: theme });
      if (!every) {
        send({ type: 'events', federationId: federation.id, events: events });
        return;
      }
      var i = 0;
      var timer = setInterval(function () {
        var batch = events.slice(i, i + 4);
        i += 4;
        if (batch.length > 0) send({ type: 'events', federationId: federation.id, events: batch });
        if (i >= events.length) {
          clearInterval(timer);
          // The process ended: the extension pushes the federation's whole state, no longer live.
          setTimeout(function () {
            var saved = JSON.parse(sessionStorage.getItem(STATE_KEY) || '{}');
            var folded = (saved.federations || []).filter(function (f) { return f.id === federation.id; })[0];
            if (folded) send({ type: 'federation', federation: Object.assign({}, folded, { live: false }) });
          }, 100);
        }
      }, every);
    });
  }

  window.acquireVsCodeApi = function () {
    return {
      postMessage: function (message) {
        posted.push(message);
        if (message && message.type === 'ready') replay();
        // Requests get a reply as from the extension; the preview saves nothing.
        if (message && message.type === 'request') {
          send({ type: 'reply', id: message.id, method: message.method, error: { code: 'E_WRITE_FAILED', message: 'The preview page cannot save files.' } });
        }
      },
      getState: function () {
        var s = sessionStorage.getItem(STATE_KEY);
        return s === null ? undefined : JSON.parse(s);
      },
      setState: function (state) {
        sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
      },
    };
  };
})();
