/** Entry point of the web UI bundle (esbuild → qjm_jupyter_server/webui/static/webui.js). */

import '../../style/base.css';
import './webui.css';

import { QJMApi } from '../api';
import { WebApp } from './app';

function boot(): void {
  const root = document.getElementById('qjm-app');
  if (!root) {
    return;
  }
  const baseUrl = document.body.dataset.qjmBaseUrl || '/';
  new WebApp(root, new QJMApi(baseUrl));
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot);
} else {
  boot();
}
