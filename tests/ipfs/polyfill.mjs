// Promise.withResolvers (ES2024) for Node.js 20: some of js-ipfs's
// dependencies call it, and Node.js has it only from version 22. Preloaded
// by start-daemon with NODE_OPTIONS=--import.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
