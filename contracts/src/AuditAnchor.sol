// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Owned2Step} from "./Owned2Step.sol";

/// @title AuditAnchor
/// @notice Public checkpoints of medvault's tamper-evident logs. An operator
///         (a data centre's signer key) anchors `(logId, treeSize, rootHash)`,
///         the size and Merkle root of one append-only log. Tree sizes strictly
///         increase per log, so a retried transaction reverts instead of
///         writing twice, and a log cannot be rolled back on chain.
/// @dev No personal data goes on chain: `logId` is an opaque identifier of a
///      log (a hash chosen by the data centre, never a name or a patient
///      identifier) and `rootHash` is a Merkle tree head. The entries
///      themselves stay off chain.
///
///      The owner (see `Owned2Step`) is the admin: it adds and removes
///      operators and is not an operator itself unless it adds itself.
contract AuditAnchor is Owned2Step {
    /// @notice The caller is not an allowlisted operator.
    error NotOperator(address caller);
    /// @notice `account` is already an operator.
    error AlreadyOperator(address account);
    /// @notice `account` is not an operator.
    error UnknownOperator(address account);
    /// @notice `logId` is zero.
    error ZeroLogId();
    /// @notice `rootHash` is zero.
    error ZeroRootHash();
    /// @notice This exact checkpoint is already the latest one of the log: a
    ///         retry of an anchor that has landed. Nothing was written.
    error AlreadyAnchored(bytes32 logId, uint64 treeSize, bytes32 rootHash);
    /// @notice `treeSize` is not above the latest anchored size of the log.
    ///         When the sizes are equal the roots differ: two different trees
    ///         of the same size were signed for one log.
    error TreeSizeNotIncreasing(bytes32 logId, uint64 latestTreeSize, uint64 treeSize);

    /// @notice `operator` may now anchor.
    event OperatorAdded(address indexed operator);
    /// @notice `operator` may no longer anchor.
    event OperatorRemoved(address indexed operator);
    /// @notice `operator` anchored the tree head `(treeSize, rootHash)` of `logId`.
    event Anchored(bytes32 indexed logId, uint64 treeSize, bytes32 rootHash, address indexed operator);

    /// @dev Two storage slots per log.
    struct Checkpoint {
        bytes32 rootHash;
        uint64 treeSize;
        uint64 timestamp;
        uint64 blockNumber;
    }

    mapping(bytes32 logId => Checkpoint) private _latest;
    mapping(address account => bool) private _operators;

    /// @param admin_ The first admin (owner); may differ from the deployer.
    constructor(address admin_) Owned2Step(admin_) {}

    /// @notice The admin, i.e. the owner.
    function admin() external view returns (address) {
        return owner();
    }

    /// @notice Whether `account` may anchor.
    function isOperator(address account) external view returns (bool) {
        return _operators[account];
    }

    /// @notice Allows `account` to anchor.
    /// @dev Only the admin. Reverts with `ZeroAddress` or `AlreadyOperator`.
    function addOperator(address account) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        if (_operators[account]) revert AlreadyOperator(account);
        _operators[account] = true;
        emit OperatorAdded(account);
    }

    /// @notice Stops `account` from anchoring; its earlier anchors stay.
    /// @dev Only the admin. Reverts with `UnknownOperator`.
    function removeOperator(address account) external onlyOwner {
        if (!_operators[account]) revert UnknownOperator(account);
        delete _operators[account];
        emit OperatorRemoved(account);
    }

    /// @notice Records `(treeSize, rootHash)` as the latest tree head of `logId`.
    /// @dev Only an operator. `treeSize` must be above the latest anchored size
    ///      of `logId` (so above zero for a new log). A resubmission of the
    ///      latest checkpoint reverts with `AlreadyAnchored`, any other size
    ///      that does not increase with `TreeSizeNotIncreasing`.
    /// @param logId Opaque identifier of the log (a hash, never personal data).
    /// @param treeSize Number of entries in the log.
    /// @param rootHash Merkle root of those entries.
    function anchor(bytes32 logId, uint64 treeSize, bytes32 rootHash) external {
        if (!_operators[msg.sender]) revert NotOperator(msg.sender);
        if (logId == bytes32(0)) revert ZeroLogId();
        if (rootHash == bytes32(0)) revert ZeroRootHash();
        Checkpoint storage latestCheckpoint = _latest[logId];
        uint64 latestSize = latestCheckpoint.treeSize;
        if (treeSize <= latestSize) {
            if (treeSize == latestSize && rootHash == latestCheckpoint.rootHash) {
                revert AlreadyAnchored(logId, treeSize, rootHash);
            }
            revert TreeSizeNotIncreasing(logId, latestSize, treeSize);
        }
        latestCheckpoint.rootHash = rootHash;
        latestCheckpoint.treeSize = treeSize;
        latestCheckpoint.timestamp = uint64(block.timestamp);
        latestCheckpoint.blockNumber = uint64(block.number);
        emit Anchored(logId, treeSize, rootHash, msg.sender);
    }

    /// @notice The latest checkpoint of `logId`; all zero if it was never anchored.
    /// @return treeSize Number of entries in the log at that checkpoint.
    /// @return rootHash Merkle root of those entries.
    /// @return timestamp Block timestamp of the anchoring transaction.
    /// @return blockNumber Block of the anchoring transaction (where its `Anchored` event is).
    function latest(bytes32 logId)
        external
        view
        returns (uint64 treeSize, bytes32 rootHash, uint64 timestamp, uint64 blockNumber)
    {
        Checkpoint storage c = _latest[logId];
        return (c.treeSize, c.rootHash, c.timestamp, c.blockNumber);
    }
}
