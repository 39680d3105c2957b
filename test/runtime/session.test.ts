import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableDevices, createSession, DeviceUnavailableError, executionProviders, noWebGpuAdapter, ortTensor, runSession, SWIFTSHADER_ENV } from '../../src/runtime/session.js';
import { encodeModel } from '../../src/graph/onnx/model.js';

const addModel = encodeModel({
  graph: {
    name: 'add',
    nodes: [{ opType: 'Add', inputs: ['x', 'y'], outputs: ['z'] }],
    inputs: [{ name: 'x', elemType: 'float32', shape: ['n'] }, { name: 'y', elemType: 'float32', shape: ['n'] }],
    outputs: [{ name: 'z', elemType: 'float32', shape: ['n'] }],
  },
});

describe('runtime/session', () => {
  test('cpu is always available and runs a model built by our ONNX encoder', async () => {
    assert.ok(availableDevices().includes('cpu'));
    const s = await createSession(addModel);
    const out = await runSession(s, { x: ortTensor('float32', new Float32Array([1, 2]), [2]), y: ortTensor('float32', new Float32Array([10, 20]), [2]) });
    assert.deepEqual([...(out.z.data as Float32Array)], [11, 22]);
  });

  test('an unknown device is refused with a list of what is available', () => {
    assert.throws(() => executionProviders('tpu'), (e: unknown) => e instanceof DeviceUnavailableError && /unknown device/.test(e.message) && /Available here: cpu/.test(e.message));
  });

  test('cuda without its provider library fails clearly instead of falling back to cpu', async () => {
    if (availableDevices().includes('cuda')) return; // a machine with the CUDA provider installed
    await assert.rejects(createSession(addModel, { device: 'cuda' }), (e: unknown) => e instanceof DeviceUnavailableError && /CUDA provider library is not installed/.test(e.message));
  });

  test('webgpu without a GPU adapter fails clearly, naming the cause and leaving webgpu out of the list', async () => {
    if (!availableDevices().includes('webgpu')) return; // a platform without the bundled WebGPU provider
    let session: Awaited<ReturnType<typeof createSession>> | undefined;
    try {
      session = await createSession(addModel, { device: 'webgpu' });
    } catch (e) {
      assert.ok(e instanceof DeviceUnavailableError, String(e));
      assert.match(e.message, /device 'webgpu' is not available: the WebGPU provider is installed but found no GPU adapter/);
      assert.match(e.message, /SwiftShader/);
      assert.match(e.message, /Available here: cpu\.$/);
      return;
    }
    // A machine with a WebGPU adapter: the session works.
    const out = await runSession(session, { x: ortTensor('float32', new Float32Array([1, 2]), [2]), y: ortTensor('float32', new Float32Array([10, 20]), [2]) });
    assert.deepEqual([...(out.z.data as Float32Array)], [11, 22]);
  });

  test('the no-adapter message names what a real GPU needs and the SwiftShader route, and a driver manifest that does not exist', () => {
    const present = new Set(['/etc/vulkan/icd.d/nvidia_icd.json']);
    const env = { VK_ICD_FILENAMES: '/etc/vulkan/icd.d/nvidia_icd.json:/opt/missing_icd.json' };

    const message = noWebGpuAdapter(env, (f) => present.has(f));
    const plain = noWebGpuAdapter({}, () => false);

    assert.match(message, /VK_ICD_FILENAMES names \/opt\/missing_icd\.json, which does not exist\./);
    assert.doesNotMatch(message, /names \/etc\/vulkan/);
    assert.doesNotMatch(plain, /which does not exist/);
    for (const needed of ['libvulkan.so.1', 'nvidia_icd.json', 'NVIDIA_DRIVER_CAPABILITIES must include graphics', 'D3D12', 'Apple silicon (Metal)', "Debian's chromium-common",
      `VK_ICD_FILENAMES=${SWIFTSHADER_ENV.VK_ICD_FILENAMES} LD_LIBRARY_PATH=${SWIFTSHADER_ENV.LD_LIBRARY_PATH}`, 'scripts/webgpu/setup.sh']) {
      assert.ok(plain.includes(needed), `'${needed}' in: ${plain}`);
    }
  });

  test('feeds that do not match the model inputs name what is missing and unexpected', async () => {
    const s = await createSession(addModel);
    await assert.rejects(runSession(s, { x: ortTensor('float32', new Float32Array([1]), [1]), w: ortTensor('float32', new Float32Array([1]), [1]) }), /missing: y; unexpected: w/);
  });

  test('an onnxruntime failure names the feeds shapes and dtypes', async () => {
    const s = await createSession(addModel);
    await assert.rejects(runSession(s, { x: ortTensor('float32', new Float32Array([1, 2]), [2]), y: ortTensor('float32', new Float32Array([1, 2, 3]), [3]) }), /x: float32\[2\]; y: float32\[3\]/);
  });
});
