// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Owned2Step} from "./Owned2Step.sol";

/// @title LicenceRegistry
/// @notice The regulator's register of practitioner licences, read by every
///         data centre. Only the regulator writes it; each change records the
///         new status, the end of validity and the hash of the regulator's
///         decision (the evidence, kept off chain).
/// @dev No personal data goes on chain. A practitioner is known here only by
///      a pseudonymous key: a `bytes32` the regulator derives off chain (for
///      example a keyed hash of its own practitioner number). Names,
///      registration numbers and the evidence documents never appear; only
///      the hash of the evidence does.
///
///      The owner (see `Owned2Step`) is the regulator.
contract LicenceRegistry is Owned2Step {
    /// @notice Licence status. `None` is the status of a key never written.
    enum Status {
        None,
        Active,
        Suspended,
        Revoked,
        Expired
    }

    /// @notice The practitioner key is zero.
    error ZeroPractitioner();
    /// @notice `None` cannot be set; it only means "never written".
    error InvalidStatus();
    /// @notice The evidence hash is zero; every change must point to a decision.
    error ZeroEvidenceHash();
    /// @notice An `Active` licence must be valid after the current block.
    error ValidUntilNotInFuture(uint64 validUntil, uint256 blockTimestamp);

    /// @notice The regulator set the licence of `practitioner`.
    /// @param practitioner Pseudonymous key of the practitioner.
    /// @param previousStatus Status before this change (`None` for a new key).
    /// @param status New status.
    /// @param validUntil Last second (unix time) at which the licence is valid.
    /// @param evidenceHash Hash of the regulator's decision document.
    event LicenceChanged(
        bytes32 indexed practitioner, Status previousStatus, Status status, uint64 validUntil, bytes32 evidenceHash
    );

    /// @notice One licence, as last set by the regulator. Two storage slots.
    struct Licence {
        Status status;
        uint64 validUntil;
        uint64 updatedAt;
        bytes32 evidenceHash;
    }

    mapping(bytes32 practitioner => Licence) private _licences;

    /// @param regulator_ The first regulator (owner); may differ from the deployer.
    constructor(address regulator_) Owned2Step(regulator_) {}

    /// @notice The regulator, i.e. the owner.
    function regulator() external view returns (address) {
        return owner();
    }

    /// @notice Sets the licence of `practitioner`, replacing the previous one.
    /// @dev Only the regulator. Reverts with `ZeroPractitioner`, `InvalidStatus`
    ///      (for `None`), `ZeroEvidenceHash`, or `ValidUntilNotInFuture` when
    ///      an `Active` licence would already be expired. Any status may follow
    ///      any other: the regulator's procedures decide (for example a
    ///      revocation overturned on appeal).
    /// @param practitioner Pseudonymous key of the practitioner (never personal data).
    /// @param status The new status.
    /// @param validUntil Last second (unix time) at which the licence is valid;
    ///        `type(uint64).max` for no end.
    /// @param evidenceHash Hash of the regulator's decision document.
    function setLicence(bytes32 practitioner, Status status, uint64 validUntil, bytes32 evidenceHash)
        external
        onlyOwner
    {
        if (practitioner == bytes32(0)) revert ZeroPractitioner();
        if (status == Status.None) revert InvalidStatus();
        if (evidenceHash == bytes32(0)) revert ZeroEvidenceHash();
        // A validator can shift block.timestamp by seconds; licence validity is
        // decided in days, so that does not matter here or in effectiveStatus.
        // forge-lint: disable-next-line(block-timestamp)
        if (status == Status.Active && validUntil <= block.timestamp) {
            revert ValidUntilNotInFuture(validUntil, block.timestamp);
        }
        Licence storage licence = _licences[practitioner];
        Status previous = licence.status;
        licence.status = status;
        licence.validUntil = validUntil;
        licence.updatedAt = uint64(block.timestamp);
        licence.evidenceHash = evidenceHash;
        emit LicenceChanged(practitioner, previous, status, validUntil, evidenceHash);
    }

    /// @notice The licence of `practitioner` as the regulator last set it
    ///         (all zero and `None` for an unknown key). The stored status
    ///         does not turn `Expired` by itself; see `effectiveStatus`.
    /// @return status Stored status.
    /// @return validUntil Last second (unix time) at which the licence is valid.
    /// @return evidenceHash Hash of the regulator's decision document.
    /// @return updatedAt Block timestamp of the last change.
    function licenceOf(bytes32 practitioner)
        external
        view
        returns (Status status, uint64 validUntil, bytes32 evidenceHash, uint64 updatedAt)
    {
        Licence storage licence = _licences[practitioner];
        return (licence.status, licence.validUntil, licence.evidenceHash, licence.updatedAt);
    }

    /// @notice The status in force now: the stored status, except that an
    ///         `Active` licence past its `validUntil` is `Expired`.
    function effectiveStatus(bytes32 practitioner) public view returns (Status) {
        Licence storage licence = _licences[practitioner];
        // forge-lint: disable-next-line(block-timestamp)
        if (licence.status == Status.Active && block.timestamp > licence.validUntil) return Status.Expired;
        return licence.status;
    }

    /// @notice Whether `practitioner` holds a licence in force now.
    function isActive(bytes32 practitioner) external view returns (bool) {
        return effectiveStatus(practitioner) == Status.Active;
    }
}
