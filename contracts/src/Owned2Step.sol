// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title Owned2Step
/// @notice A single owner account, handed over in two steps: the owner names
///         a successor, and the successor takes over by calling
///         `acceptOwnership` from its own key. A mistyped address therefore
///         never receives the role, and the role can never be left empty
///         (there is no renounce).
/// @dev Each medvault contract gives the owner its own name in NatSpec: the
///      admin of `AuditAnchor`, the regulator of `LicenceRegistry` and
///      `PolicyRegistry`. Every failure is a custom error.
abstract contract Owned2Step {
    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice The zero address was given where an account is required.
    error ZeroAddress();

    /// @notice The owner named `newOwner` as its successor; nothing changes
    ///         until `newOwner` calls `acceptOwnership`.
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice The owner cancelled the pending transfer to `pendingOwner`.
    event OwnershipTransferCancelled(address indexed owner, address indexed pendingOwner);
    /// @notice The owner changed (`previousOwner` is zero at deployment).
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    address private _owner;
    address private _pendingOwner;

    /// @param initialOwner The first owner; need not be the deploying account.
    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert ZeroAddress();
        _owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice The current owner.
    function owner() public view returns (address) {
        return _owner;
    }

    /// @notice The successor named by the owner, or zero when no transfer is pending.
    function pendingOwner() public view returns (address) {
        return _pendingOwner;
    }

    /// @notice Names `newOwner` as successor, replacing any earlier pending one.
    ///         The current owner keeps the role until `newOwner` accepts.
    /// @dev Only the owner. Reverts with `ZeroAddress` for the zero address;
    ///      use `cancelOwnershipTransfer` to withdraw an offer.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @notice Withdraws the pending offer, if any.
    /// @dev Only the owner.
    function cancelOwnershipTransfer() external onlyOwner {
        address pending = _pendingOwner;
        delete _pendingOwner;
        emit OwnershipTransferCancelled(msg.sender, pending);
    }

    /// @notice The pending owner takes over the role.
    /// @dev Only the pending owner.
    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert NotPendingOwner(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }
}
