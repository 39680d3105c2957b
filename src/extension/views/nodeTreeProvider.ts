/**
 * A TreeDataProvider over the plain `TreeNode`s of src/extension/state/treeModel.ts. Refreshes are
 * coalesced (events can arrive many times a second) so the sidebar never churns the UI thread.
 */
import * as vscode from 'vscode';
import type { TreeNode } from '../state/treeModel.js';

/** Minimum time between two refreshes of a view. */
const REFRESH_MS = 250;

/** Shows the nodes `build()` returns; call `refresh()` when the source changed. */
export class NodeTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private timer: NodeJS.Timeout | undefined;
  private parents = new Map<string, TreeNode>();

  constructor(private readonly build: () => readonly TreeNode[]) {}

  /** Schedules a refresh (at most one per REFRESH_MS). */
  refresh(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.changed.fire(undefined);
    }, REFRESH_MS);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const hasChildren = node.children !== undefined && node.children.length > 0;
    const item = new vscode.TreeItem(node.label, hasChildren ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    if (node.icon !== undefined) item.iconPath = new vscode.ThemeIcon(node.icon);
    if (node.federationId !== undefined && node.contextValue?.startsWith('federation.') === true) {
      item.command = { command: 'fedex.openDashboard', title: 'Open Dashboard', arguments: [node] };
    }
    return item;
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (node !== undefined) return [...(node.children ?? [])];
    const roots = this.build();
    this.parents = new Map();
    const index = (parent: TreeNode): void =>
      parent.children?.forEach((c) => {
        this.parents.set(c.id, parent);
        index(c);
      });
    roots.forEach(index);
    return [...roots];
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return this.parents.get(node.id);
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.changed.dispose();
  }
}
