/** Every command the extension contributes (package.json `contributes.commands` lists the same; a test checks it). */
export const COMMAND_IDS = [
  'fedex.startRound',
  'fedex.hostFederation',
  'fedex.joinFederation',
  'fedex.leaveFederation',
  'fedex.stopFederation',
  'fedex.openDashboard',
  'fedex.runSimulation',
  'fedex.aggregateAdapters',
  'fedex.exportAdapter',
  'fedex.manageClients',
  'fedex.createIdentityKey',
] as const;

/** A contributed command id. */
export type CommandId = (typeof COMMAND_IDS)[number];

/** The views of the FedEx activity-bar container (package.json `contributes.views.fedex` lists the same; a test checks it). */
export const VIEW_IDS = ['fedex.federations', 'fedex.clients', 'fedex.rounds'] as const;

/** A contributed view id. */
export type ViewId = (typeof VIEW_IDS)[number];
