// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Vm} from "./lib/MiniTest.sol";
import {OwnershipTests} from "./lib/OwnershipTests.sol";
import {LicenceRegistry} from "../src/LicenceRegistry.sol";
import {Owned2Step} from "../src/Owned2Step.sol";

contract LicenceRegistryTest is OwnershipTests {
    LicenceRegistry internal registry;

    bytes32 internal constant PRACTITIONER = keccak256("pseudonymous practitioner key 1");
    bytes32 internal constant OTHER_PRACTITIONER = keccak256("pseudonymous practitioner key 2");
    bytes32 internal constant EVIDENCE = keccak256("decision 2026/001");
    bytes32 internal constant EVIDENCE_2 = keccak256("decision 2026/002");
    uint64 internal constant NOW = 1_800_000_000;
    uint64 internal constant IN_A_YEAR = NOW + 365 days;

    function setUp() public {
        vm.warp(NOW);
        registry = new LicenceRegistry(owner);
    }

    function deploy(address initialOwner) internal override returns (Owned2Step) {
        return new LicenceRegistry(initialOwner);
    }

    function owned() internal view override returns (Owned2Step) {
        return registry;
    }

    function status(bytes32 practitioner) internal view returns (uint256) {
        (LicenceRegistry.Status s,,,) = registry.licenceOf(practitioner);
        return uint256(s);
    }

    function test_RegulatorIsTheOwner() public view {
        assertEq(registry.regulator(), owner, "regulator");
    }

    // --- access and input --------------------------------------------------

    function test_SetLicenceOnlyByRegulator() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, stranger));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
        assertEq(status(PRACTITIONER), uint256(LicenceRegistry.Status.None), "status");
    }

    function test_SetLicenceRejectsZeroPractitioner() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LicenceRegistry.ZeroPractitioner.selector));
        registry.setLicence(bytes32(0), LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
    }

    function test_SetLicenceRejectsStatusNone() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LicenceRegistry.InvalidStatus.selector));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.None, IN_A_YEAR, EVIDENCE);
    }

    function test_SetLicenceRejectsStatusOutOfRange() public {
        // The ABI decoder refuses an enum value past the last one, with no data.
        bytes memory call = abi.encodeWithSelector(
            LicenceRegistry.setLicence.selector, PRACTITIONER, uint256(5), uint256(IN_A_YEAR), EVIDENCE
        );
        vm.prank(owner);
        (bool ok, bytes memory returned) = address(registry).call(call);
        assertFalse(ok, "call succeeded");
        assertEq(returned.length, 0, "revert data length");
    }

    function test_SetLicenceRejectsZeroEvidence() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LicenceRegistry.ZeroEvidenceHash.selector));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Suspended, IN_A_YEAR, bytes32(0));
    }

    function test_ActiveLicenceMustBeValidInTheFuture() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(LicenceRegistry.ValidUntilNotInFuture.selector, NOW, uint256(NOW)));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, NOW, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(LicenceRegistry.ValidUntilNotInFuture.selector, uint64(0), uint256(NOW)));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, 0, EVIDENCE);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, NOW + 1, EVIDENCE);
        vm.stopPrank();
        assertTrue(registry.isActive(PRACTITIONER), "isActive");
    }

    function test_OtherStatusesMayCarryAPastValidUntil() public {
        vm.startPrank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Expired, NOW - 1 days, EVIDENCE);
        registry.setLicence(OTHER_PRACTITIONER, LicenceRegistry.Status.Revoked, 0, EVIDENCE);
        vm.stopPrank();
        assertEq(status(PRACTITIONER), uint256(LicenceRegistry.Status.Expired), "expired");
        assertEq(status(OTHER_PRACTITIONER), uint256(LicenceRegistry.Status.Revoked), "revoked");
    }

    function test_NewRegulatorSetsLicences() public {
        vm.prank(owner);
        registry.transferOwnership(successor);
        vm.prank(successor);
        registry.acceptOwnership();

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
        vm.prank(successor);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
        assertTrue(registry.isActive(PRACTITIONER), "isActive");
    }

    // --- effects -----------------------------------------------------------

    function test_SetLicenceStoresIt() public {
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
        (LicenceRegistry.Status s, uint64 validUntil, bytes32 evidenceHash, uint64 updatedAt) =
            registry.licenceOf(PRACTITIONER);
        assertEq(uint256(s), uint256(LicenceRegistry.Status.Active), "status");
        assertEq(validUntil, IN_A_YEAR, "validUntil");
        assertEq(evidenceHash, EVIDENCE, "evidenceHash");
        assertEq(updatedAt, NOW, "updatedAt");
        assertEq(uint256(registry.effectiveStatus(PRACTITIONER)), uint256(LicenceRegistry.Status.Active), "effective");
        assertTrue(registry.isActive(PRACTITIONER), "isActive");
        assertFalse(registry.isActive(OTHER_PRACTITIONER), "other practitioner");
    }

    function test_UnknownPractitionerHasNoLicence() public view {
        (LicenceRegistry.Status s, uint64 validUntil, bytes32 evidenceHash, uint64 updatedAt) =
            registry.licenceOf(OTHER_PRACTITIONER);
        assertEq(uint256(s), uint256(LicenceRegistry.Status.None), "status");
        assertEq(validUntil, 0, "validUntil");
        assertEq(evidenceHash, bytes32(0), "evidenceHash");
        assertEq(updatedAt, 0, "updatedAt");
        assertEq(
            uint256(registry.effectiveStatus(OTHER_PRACTITIONER)), uint256(LicenceRegistry.Status.None), "effective"
        );
        assertFalse(registry.isActive(OTHER_PRACTITIONER), "isActive");
    }

    function test_SetLicenceEmitsLicenceChanged() public {
        vm.expectEmit(address(registry));
        emit LicenceRegistry.LicenceChanged(
            PRACTITIONER, LicenceRegistry.Status.None, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE
        );
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);

        vm.expectEmit(address(registry));
        emit LicenceRegistry.LicenceChanged(
            PRACTITIONER, LicenceRegistry.Status.Active, LicenceRegistry.Status.Suspended, IN_A_YEAR, EVIDENCE_2
        );
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Suspended, IN_A_YEAR, EVIDENCE_2);
    }

    /// @dev The raw log, as a data centre decodes it.
    function test_LicenceChangedLogLayout() public {
        vm.recordLogs();
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Revoked, IN_A_YEAR, EVIDENCE);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "number of logs");
        assertEq(logs[0].emitter, address(registry), "emitter");
        assertEq(logs[0].topics.length, 2, "number of topics");
        assertEq(logs[0].topics[0], keccak256("LicenceChanged(bytes32,uint8,uint8,uint64,bytes32)"), "topic0");
        assertEq(logs[0].topics[1], PRACTITIONER, "practitioner");
        assertEq(logs[0].data, abi.encode(uint256(0), uint256(3), uint256(IN_A_YEAR), EVIDENCE), "data");
    }

    function test_EveryStatusCanFollowEveryOther() public {
        vm.startPrank(owner);
        for (uint256 from = 1; from <= 4; ++from) {
            for (uint256 to = 1; to <= 4; ++to) {
                registry.setLicence(PRACTITIONER, LicenceRegistry.Status(from), IN_A_YEAR, EVIDENCE);
                vm.expectEmit(address(registry));
                emit LicenceRegistry.LicenceChanged(
                    PRACTITIONER, LicenceRegistry.Status(from), LicenceRegistry.Status(to), IN_A_YEAR, EVIDENCE_2
                );
                registry.setLicence(PRACTITIONER, LicenceRegistry.Status(to), IN_A_YEAR, EVIDENCE_2);
                assertEq(status(PRACTITIONER), to, "status");
            }
        }
        vm.stopPrank();
    }

    // --- expiry ------------------------------------------------------------

    function test_ActiveLicenceExpiresAfterValidUntil() public {
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);

        vm.warp(IN_A_YEAR);
        assertTrue(registry.isActive(PRACTITIONER), "active at validUntil");
        vm.warp(uint256(IN_A_YEAR) + 1);
        assertFalse(registry.isActive(PRACTITIONER), "active after validUntil");
        assertEq(uint256(registry.effectiveStatus(PRACTITIONER)), uint256(LicenceRegistry.Status.Expired), "effective");
        // The stored status is what the regulator wrote.
        assertEq(status(PRACTITIONER), uint256(LicenceRegistry.Status.Active), "stored status");
    }

    function test_OpenEndedLicenceDoesNotExpire() public {
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, type(uint64).max, EVIDENCE);
        vm.warp(type(uint64).max);
        assertTrue(registry.isActive(PRACTITIONER), "isActive");
    }

    function test_SuspendedLicenceIsNotActive() public {
        vm.startPrank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, IN_A_YEAR, EVIDENCE);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Suspended, IN_A_YEAR, EVIDENCE_2);
        vm.stopPrank();
        assertFalse(registry.isActive(PRACTITIONER), "isActive");
        assertEq(
            uint256(registry.effectiveStatus(PRACTITIONER)), uint256(LicenceRegistry.Status.Suspended), "effective"
        );
    }

    function testFuzz_ActiveOnlyUntilValidUntil(uint64 validUntil, uint64 at) public {
        vm.assume(validUntil > NOW && at >= NOW);
        vm.prank(owner);
        registry.setLicence(PRACTITIONER, LicenceRegistry.Status.Active, validUntil, EVIDENCE);
        vm.warp(at);
        if (at <= validUntil) {
            assertTrue(registry.isActive(PRACTITIONER), "isActive before or at validUntil");
        } else {
            assertFalse(registry.isActive(PRACTITIONER), "isActive after validUntil");
        }
    }
}
