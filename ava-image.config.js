// `make image-test`: the appliance image booted under QEMU (test/image/), apart from `make test`: each
// boot under TCG costs a minute or more, and the boots of one box must run in order.
export default {
  extensions: ['ts'],
  files: ['test/image/**/*.test.ts'],
  timeout: '45m',
  workerThreads: false,
  concurrency: 1,
};
