/* attachments.js: files in a conversation, for the visitor's chat (and the widget's frame) and the
 * agent console alike (docs/API.md, "Attachments"): the attach button and its upload with a
 * progress bar, and how a message carrying a file is drawn: an image as a preview, anything else
 * as a chip with its name and size. The server judges a file's type from its bytes; the page only
 * reports what it says (413 too large, 415 a type it does not take), in the page's language.
 *
 * User data goes into the DOM with textContent and attributes only, never innerHTML. */
(function () {
  'use strict';

  const t = window.KefuI18n.t;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* A size people read: bytes, KB or MB, in the page's locale. */
  function formatSize(bytes) {
    const n = Number(bytes) || 0;
    const locale = window.KefuI18n.locale ? window.KefuI18n.locale() : undefined;
    const fmt = (value, digits) => new Intl.NumberFormat(locale, {maximumFractionDigits: digits}).format(value);
    if (n < 1024) return t('attach.bytes', {count: n, size: fmt(n, 0)});
    if (n < 1024 * 1024) return t('attach.kilobytes', {size: fmt(n / 1024, n < 10 * 1024 ? 1 : 0)});
    return t('attach.megabytes', {size: fmt(n / (1024 * 1024), 1)});
  }

  function isImage(attachment) {
    return /^image\//.test(attachment.type || '');
  }

  /* What a person reads for a failed upload, from its status and the server's error code. */
  function uploadErrorText(err) {
    if (err.status === 413 || err.code === 'too_large') return t('attach.tooLarge');
    if (err.status === 415 || err.code === 'file_type_not_allowed') return t('attach.typeNotAllowed');
    return window.KefuI18n.errorText(err);
  }

  /* Sends file as the body of a POST to url (its name in ?name=), with XMLHttpRequest, whose
   * upload reports progress (fetch cannot). headers: extra request headers (the bearer token or
   * the CSRF token). onProgress(fraction 0..1). Resolves with the stored message; rejects with
   * {status, code, message}. */
  function upload(url, file, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const sep = url.indexOf('?') >= 0 ? '&' : '?';
      xhr.open('POST', url + sep + 'name=' + encodeURIComponent(file.name || 'file'));
      xhr.setRequestHeader('Accept', 'application/json');
      // The server judges the type from the bytes, and takes no form's type (text/plain is one).
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
      });
      xhr.addEventListener('load', () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (e) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300 && data && data.message) {
          resolve(data.message);
          return;
        }
        const error = data && data.error ? data.error : {};
        reject({status: xhr.status, code: error.code || 'http_' + xhr.status, message: error.message || ''});
      });
      xhr.addEventListener('error', () => reject({status: 0, code: 'network', message: ''}));
      xhr.addEventListener('abort', () => reject({status: 0, code: 'network', message: ''}));
      xhr.send(file);
    });
  }

  /* The attach button of a composer, with its progress bar and error line (elements the page
   * has): picking a file uploads it at once. opts: {button, input (type=file), status (the box
   * shown while it uploads), statusText (its words), progress (its <progress>), error (role=alert),
   * target() -> {url, headers} or null when there is nowhere to send yet, onSent(message)}. */
  function bindComposer(opts) {
    const {button, input, progress, status, statusText, error} = opts;
    let busy = false;
    function showError(text) {
      error.textContent = text;
      error.hidden = !text;
    }
    function setBusy(on, name) {
      busy = on;
      button.disabled = on;
      button.setAttribute('aria-busy', on ? 'true' : 'false');
      status.hidden = !on;
      if (on) {
        progress.value = 0;
        statusText.textContent = t('attach.uploading', {name});
      }
    }
    button.addEventListener('click', () => {
      if (!busy) input.click();
    });
    input.addEventListener('change', async () => {
      const file = input.files && input.files[0];
      input.value = '';
      if (!file || busy) return;
      const target = opts.target();
      if (!target) return;
      showError('');
      setBusy(true, file.name);
      try {
        const message = await upload(target.url, file, target.headers, (fraction) => {
          progress.value = Math.round(fraction * 100);
        });
        if (opts.onSent) opts.onSent(message);
      } catch (err) {
        showError(uploadErrorText(err));
      } finally {
        setBusy(false, '');
      }
    });
    return {showError};
  }

  /* The body of a message carrying an attachment: an image's preview (which opens the file) or a
   * document's chip (which downloads it). urlFor(attachment) -> a Promise of the URL to load it
   * from (the visitor's page adds a push ticket: an <img> cannot send a bearer token). */
  function render(message, urlFor) {
    const a = message.attachment;
    const box = el('div', 'msg-body msg-attachment' + (isImage(a) ? ' is-image' : ' is-file'));
    const link = el('a', 'attachment-link');
    link.href = '#';
    link.rel = 'noopener';
    link.dataset.attachmentId = String(a.id);
    const sizeText = formatSize(a.size);
    if (isImage(a)) {
      const img = el('img', 'attachment-preview');
      img.alt = t('attach.imageAlt', {name: a.name});
      img.loading = 'lazy';
      link.target = '_blank';
      link.setAttribute('aria-label', t('attach.openImage', {name: a.name, size: sizeText}));
      link.appendChild(img);
      const load = () => urlFor(a).then((url) => {
        img.src = url;
        link.href = url;
      }, () => { img.alt = t('attach.unavailable'); });
      load();
      // A lazy image loads when it is scrolled to, maybe after its URL's ticket expired: once
      // more with a fresh one.
      let retried = false;
      img.addEventListener('error', () => {
        if (retried) {
          img.alt = t('attach.unavailable');
          return;
        }
        retried = true;
        load();
      });
      // A ticket in the URL expires: a click fetches a fresh one.
      link.addEventListener('click', (e) => {
        e.preventDefault();
        urlFor(a).then((url) => window.open(url, '_blank', 'noopener'), () => {});
      });
    } else {
      link.setAttribute('download', a.name);
      link.setAttribute('aria-label', t('attach.download', {name: a.name, size: sizeText}));
      const icon = el('span', 'attachment-icon', (a.name.split('.').pop() || '').slice(0, 4).toUpperCase());
      icon.setAttribute('aria-hidden', 'true');
      const text = el('span', 'attachment-text');
      text.append(el('span', 'attachment-name', a.name), el('span', 'attachment-size', sizeText));
      link.append(icon, text);
      urlFor(a).then((url) => { link.href = url; }, () => {});
      link.addEventListener('click', (e) => {
        if (link.dataset.fresh === '1') {
          delete link.dataset.fresh;
          return; // the click below, with a fresh URL
        }
        e.preventDefault();
        urlFor(a).then((url) => {
          link.href = url;
          link.dataset.fresh = '1';
          link.click();
        }, () => {});
      });
    }
    box.appendChild(link);
    return box;
  }

  window.KefuAttach = {upload, bindComposer, render, formatSize, uploadErrorText, isImage};
})();
