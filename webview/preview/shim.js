/* global window, document, location, URLSearchParams, fetch, setInterval, clearInterval, sessionStorage */
// Stand-in for VS Code's webview API in the preview page (plain browser script, loaded before the
// dashboard bundle). Query parameters: theme=dark|light|high-contrast|high-contrast-light;
// live=<ms> replays the recorded events in batches every <ms> instead of all at once in `init`;
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
  var federation = { id: 'preview', label: params.get('label') || 'recorded run', kind: 'simulation', live: params.has('live') };

  function send(message) {
    window.postMessage(message, '*');
  }

  function parse(text) {
    return text.split('\n').filter(function (l) { return l.trim() !== ''; }).map(function (l) { return JSON.parse(l); });
  }

  function replay() {
    fetch('/events.jsonl').then(function (r) { return r.text(); }).then(function (text) {
      var events = parse(text);
      var live = Number(params.get('live'));
      if (!live) {
        var history = {};
        history[federation.id] = events;
        send({ type: 'init', version: 1, federations: [federation], history: history, selected: null, theme: theme });
        return;
      }
      send({ type: 'init', version: 1, federations: [federation], history: {}, selected: null, theme: theme });
      var i = 0;
      var timer = setInterval(function () {
        var batch = events.slice(i, i + 4);
        i += 4;
        if (batch.length > 0) send({ type: 'events', federationId: federation.id, events: batch });
        if (i >= events.length) {
          clearInterval(timer);
          send({ type: 'federations', federations: [Object.assign({}, federation, { live: false })] });
        }
      }, live);
    });
  }

  window.acquireVsCodeApi = function () {
    return {
      postMessage: function (message) {
        posted.push(message);
        if (message && message.type === 'ready') replay();
      },
      getState: function () {
        var s = sessionStorage.getItem('fedex-dashboard-state');
        return s === null ? undefined : JSON.parse(s);
      },
      setState: function (state) {
        sessionStorage.setItem('fedex-dashboard-state', JSON.stringify(state));
      },
    };
  };
})();
