// Lists the entry names of a ZIP archive (a VSIX) from its central directory, so the packaging script
// can check what a VSIX holds without an unzip tool or another dependency. ZIP64 is not needed: a VSIX
// stays far below 4 GiB and 65535 entries.

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;

/**
 * Entry names of the ZIP archive in `bytes`, in central-directory order.
 * @param {Buffer} bytes the whole archive
 * @returns {string[]}
 */
export function listZipEntries(bytes) {
  // The end-of-central-directory record is 22 bytes plus a comment of at most 65535 bytes.
  const lowest = Math.max(0, bytes.length - 22 - 0xffff);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= lowest; i--) {
    if (bytes.readUInt32LE(i) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('listZipEntries: no end-of-central-directory record (not a ZIP file?)');
  const count = bytes.readUInt16LE(eocd + 10);
  let offset = bytes.readUInt32LE(eocd + 16);
  const names = [];
  for (let i = 0; i < count; i++) {
    if (bytes.readUInt32LE(offset) !== CENTRAL_SIGNATURE) {
      throw new Error(`listZipEntries: bad central-directory header at byte ${offset} (entry ${i} of ${count})`);
    }
    const nameLength = bytes.readUInt16LE(offset + 28);
    const extraLength = bytes.readUInt16LE(offset + 30);
    const commentLength = bytes.readUInt16LE(offset + 32);
    names.push(bytes.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}
